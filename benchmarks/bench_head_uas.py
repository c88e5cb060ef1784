"""Head UAS on EWT dev with MiniLM: the batched observable against the per-sentence, per-head
loop of the definition (written here as the reference). Checks identical numbers, and reports
the speed-up (goal >= 50x) and scoring time as a share of the forward pass (goal <= 10 %)."""

from __future__ import annotations

import time

import torch

from benchmarks.common import report
from goldstone.core.observable import Probe
from goldstone.observables.head_uas import HeadUAS
from goldstone.testing import head_uas_reference


def main(sentences: int = 64, loop_sentences: int = 4) -> list[dict]:
    import transformers

    from goldstone.data.treebank import encode_sentences, read_conllu, treebank_dir
    from goldstone.models.adapters import load_eager
    from goldstone.models.pretrained import minilm_path

    folder = treebank_dir()
    if folder is None:
        print("head UAS benchmark skipped: UD English EWT not found (set GOLDSTONE_UD_EWT)")
        return []
    torch.set_num_threads(1)
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path())
    model = load_eager(minilm_path()).eval()
    sents = read_conllu(folder / "en_ewt-ud-dev.conllu", max_sentences=sentences)
    batches, relations, _ = encode_sentences(sents, tokenizer, max_length=128, batch_size=16, by_length=True)
    observable = HeadUAS(relations)
    forward = scoring = 0.0
    with torch.no_grad():  # warm-up of both, untimed (first-call allocations and kernel selection)
        warm = model(input_ids=batches[0].input_ids, attention_mask=batches[0].attention_mask, output_attentions=True)
    HeadUAS(relations).update(Probe(model, batches[0], batches[0], {}, warm))
    for batch in batches:
        start = time.perf_counter()
        with torch.no_grad():
            outputs = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_attentions=True)
        forward += time.perf_counter() - start
        start = time.perf_counter()
        observable.update(Probe(model, batch, batch, {}, outputs))
        scoring += time.perf_counter() - start
    share = scoring / forward
    middle = batches[len(batches) // 2]  # batches are sorted by length: typical sentences, not the shortest
    with torch.no_grad():
        outputs = model(input_ids=middle.input_ids, attention_mask=middle.attention_mask, output_attentions=True)
    attentions = torch.stack(outputs.attentions)
    small = middle.rows(slice(loop_sentences))
    start = time.perf_counter()
    expected = head_uas_reference(attentions[:, :loop_sentences], small, len(relations))
    loop = time.perf_counter() - start
    check = HeadUAS(relations)
    start = time.perf_counter()
    check.update(Probe(model, small, small, {}, type(outputs)(attentions=tuple(attentions[:, :loop_sentences]))))
    batched = time.perf_counter() - start
    got = check._correct.sum(0)
    if not torch.equal(got, expected):
        raise AssertionError(f"batched head UAS differs from the reference loop: max diff {(got - expected).abs().max()}")
    speed = loop / batched
    return [report("head UAS: loop / batched", speed, ">= 50", speed >= 50,
                   f"{loop_sentences} sentences, identical counts, loop {loop:.2f} s, batched {batched * 1e3:.1f} ms"),
            report("head UAS: scoring / forward pass", share, "<= 0.10", share <= 0.10,
                   f"{sentences} EWT dev sentences in length-sorted batches, forward {forward:.2f} s, scoring {scoring:.2f} s")]


if __name__ == "__main__":
    main()
