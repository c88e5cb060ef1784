"""All single-node and head label x output matrices of one MiniLM block: the batched observable (one forward
per batch of data, silencing by linearity at the readout) against one forward per silenced node (the nodes of
the site masked in the model with `silence_units`, the readout applied to what the site then outputs).
Checks identical matrices and reports the speed-up (goal >= 100x)."""

from __future__ import annotations

import torch

from benchmarks.common import compare, interleaved, pin_threads
from goldstone.core.hooks import capture
from goldstone.core.observable import measure
from goldstone.models.adapters import head_dim, num_heads, num_units, silence_units, site_hook
from goldstone.observables.unit_performance import UnitActivations, UnitGroups, fit_readout, unit_performance


def per_node_forward(model, batches, layer: int, site: str, readout, groups: UnitGroups) -> torch.Tensor:
    """The definition: for each unit, one forward per batch with every other node of the site silenced;
    returns the fields (N, G, K)."""
    units = num_units(model, site)
    name = site_hook(model, layer, site)
    fields = []
    for index in groups.index:
        mask = torch.zeros(units)
        mask[index] = 1
        rows = []
        with torch.no_grad(), silence_units(model, layer, site, mask), capture(model, [name]) as cache:
            for inputs, _ in batches:
                model(**inputs)
                rows.append(cache[name][:, 0] @ readout.weight.T + readout.bias)
        fields.append(torch.cat(rows))
    return torch.stack(fields, 1)


def main(texts: int = 32, labels: int = 8, layer: int = 3, rounds: int = 3) -> list[dict]:
    import transformers

    from goldstone.models.pretrained import load_classifier

    pin_threads(1)
    model, tokenizer = load_classifier("minilm", labels)
    words = "the of and to a in is it you that he was for on are with as I his they be at one have this".split()
    generator = torch.Generator().manual_seed(0)
    sentences = [" ".join(words[i] for i in torch.randint(len(words), (24,), generator=generator)) for _ in range(texts)]
    y = torch.randint(labels, (texts,), generator=generator)
    encoded = tokenizer(sentences, padding=True, return_tensors="pt")
    batches = [({k: v[i:i + 32] for k, v in encoded.items()}, y[i:i + 32]) for i in range(0, texts, 32)]
    del transformers
    site = "heads"
    observable = UnitActivations(layer, site)
    measure(model, [observable], batches)
    activations, targets = observable.collected()
    readout = fit_readout(activations, targets, labels, iterations=50)
    groups = {"nodes": UnitGroups.nodes(num_units(model, site)), "heads": UnitGroups.heads(num_heads(model), head_dim(model))}

    fast, slow = {}, {}

    def batched() -> None:
        observable = UnitActivations(layer, site)
        measure(model, [observable], batches)
        fast.update({kind: unit_performance(*observable.collected(), readout, g) for kind, g in groups.items()})

    def per_node() -> None:
        for kind, g in groups.items():
            fields = per_node_forward(model, batches, layer, site, readout, g)
            k = readout.num_outputs
            matrix = torch.einsum("ia,igk->gak", torch.nn.functional.one_hot(targets, k).double(),
                                  fields.double() - readout.bias.double())
            confusion = torch.zeros(len(g), k, k, dtype=torch.float64)
            confusion.index_put_((torch.arange(len(g)).expand(len(targets), -1),
                                  targets.unsqueeze(1).expand(-1, len(g)), fields.argmax(-1)),
                                 torch.tensor(1.0, dtype=torch.float64), accumulate=True)
            slow[kind] = (matrix / matrix.abs().amax((-2, -1), keepdim=True), confusion)

    timings = interleaved({"batched": batched, "per node": per_node}, rounds=rounds, warmup=0)
    identical = all(torch.allclose(fast[kind].label_output, slow[kind][0], atol=1e-5)
                    and torch.equal(fast[kind].confusion, slow[kind][1]) for kind in groups)
    return [compare("single-node matrices: per node / batched", timings["batched"], timings["per node"], 100,
                    f"{len(groups['nodes'])} nodes + {len(groups['heads'])} heads of block {layer}, {texts} texts; "
                    f"matrices identical: {identical}", unit="s", scale=1.0, met=identical)]


if __name__ == "__main__":
    main()
