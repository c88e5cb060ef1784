"""Head UAS on EWT dev with MiniLM against Chen et al.'s scoring (`benchmarks.chen_head_uas`),
one thread. Two comparisons, with the "all" accuracy of every head and direction checked equal:

- scoring alone, from the same attention: their per-sentence word-level conversion and argmax
  against `HeadUAS` (goal >= 10x);
- the whole job, forward included: their batches of 16 padded to 128 tokens and scoring, against
  the `goldstone uas` engine (`score_treebank`'s path: length-sorted batches of 16) (goal >= 3x).

It also reports how close the forward pass runs to the machine: Hugging Face's eager MiniLM forward
(with attentions) on `goldstone uas`'s length-sorted batches, timed as 2 x (Linear parameters) x
(tokens, padding included) FLOPs over its whole time (attention, softmax and layer norms included),
against a 1024^3 float32 matmul on the same thread. It measures Hugging Face's forward, not ours.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks import chen_head_uas as chen
from benchmarks.common import compare, interleaved, pin_threads, report
from goldstone.core.observable import Probe, measure
from goldstone.observables.head_uas import DIRECTIONS, HeadUAS


def matmul_rate(size: int = 1024, repeats: int = 5) -> float:
    """Best float32 matmul rate of this thread, FLOP/s of CPU time (the clock of every timing here)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    timing = interleaved({"matmul": lambda: a @ b}, rounds=repeats)["matmul"]
    return 2 * size ** 3 / min(timing.seconds)


def matmul_parameters(model: torch.nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def main(sentences: int = 128, rounds: int = 3) -> list[dict]:
    import transformers

    from goldstone.data.treebank import encode_sentences, read_conllu, treebank_dir
    from goldstone.models.adapters import load_eager
    from goldstone.models.pretrained import minilm_path

    folder = treebank_dir()
    if folder is None:
        print("head UAS benchmark skipped: UD English EWT not found (set GOLDSTONE_UD_EWT)")
        return []
    pin_threads(1)
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path())
    model = load_eager(minilm_path()).eval()
    sents = read_conllu(folder / "en_ewt-ud-dev.conllu", max_sentences=sentences)
    theirs, relation_names, _ = encode_sentences(sents, tokenizer, chen.MAX_LENGTH, chen.BATCH)
    ours, _, _ = encode_sentences(sents, tokenizer, chen.MAX_LENGTH, chen.BATCH, relations=relation_names,
                                  by_length=True)
    heads, relations = chen.gold_trees(theirs, relation_names)
    attention = chen.padded_attention(model, theirs, tokenizer.pad_token_id)
    outputs = []
    with torch.no_grad():
        for batch in ours:
            outputs.append(model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_attentions=True))
    found = {}

    def their_scoring() -> None:
        groups = [chen.token_groups(b.word_index[i], int(b.attention_mask[i].sum())) for b in theirs
                  for i in range(len(b.n_words))]
        found["theirs"] = chen.score([chen.word_level(a, g) for a, g in zip(attention, groups)], heads, relations)

    def our_scoring() -> None:
        observable = HeadUAS(relation_names, include_root=True)
        for batch, out in zip(ours, outputs):
            observable.update(Probe(model, batch, batch, {}, out))
        found["ours"] = observable.compute().accuracy[..., -1].permute(2, 0, 1).numpy()

    def their_job() -> None:
        chen.padded_attention(model, theirs, tokenizer.pad_token_id)
        their_scoring()

    def our_job() -> None:
        feed = (({"input_ids": b.input_ids, "attention_mask": b.attention_mask}, b) for b in ours)
        found["ours"] = measure(model, [HeadUAS(relation_names, include_root=True)], feed)[0].accuracy[..., -1] \
            .permute(2, 0, 1).numpy()

    scoring = interleaved({"goldstone": our_scoring, "Chen et al.": their_scoring}, rounds=rounds)
    gap = float(np.abs(found["ours"] - found["theirs"]).max())
    same = gap < 2 / sum(map(len, heads))  # at most one word's argmax flipped by float32 rounding per head
    detail = (f"interleaved; {sentences} EWT dev sentences, 6 layers x 12 heads x {len(DIRECTIONS)} directions; max |diff| of "
              f"'all' accuracy over heads {gap:.1e} (same: {same})")
    results = [compare("head UAS scoring: Chen et al. / ours", scoring["goldstone"], scoring["Chen et al."], 10,
                       detail, unit="s", scale=1.0, met=same)]
    job = interleaved({"goldstone": our_job, "Chen et al.": their_job}, rounds=rounds)
    results.append(compare("head UAS whole job: Chen et al. / ours", job["goldstone"], job["Chen et al."], 3,
                           detail, unit="s", scale=1.0, met=same))

    tokens = sum(int(b.input_ids.numel()) for b in ours)
    forward = min(interleaved({"forward": lambda: [model(input_ids=b.input_ids, attention_mask=b.attention_mask,
                                                         output_attentions=True) for b in ours]},
                              rounds=rounds)["forward"].seconds)
    achieved, peak = 2 * matmul_parameters(model) * tokens / forward, matmul_rate()
    results.append(report("HF MiniLM forward, Linear FLOP/s / matmul FLOP/s", achieved / peak, "reported", True,
                          f"Hugging Face's eager forward with attentions, length-sorted batches of {chen.BATCH}: "
                          f"{tokens} tokens (padding included) in {forward:.2f} s CPU, 2 x Linear parameters x tokens "
                          f"= {achieved / 1e9:.1f} GFLOP/s against {peak / 1e9:.1f} GFLOP/s for a 1024^3 float32 "
                          f"matmul on this thread"))
    return results


if __name__ == "__main__":
    with torch.no_grad():
        main()
