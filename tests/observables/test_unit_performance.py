import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

transformers = pytest.importorskip("transformers")

from goldstone.core.errors import GoldstoneError  # noqa: E402
from goldstone.core.hooks import capture  # noqa: E402
from goldstone.core.observable import measure  # noqa: E402
from goldstone.models.adapters import num_units, silence_units, site_hook  # noqa: E402
from goldstone.observables.unit_performance import (  # noqa: E402
    Readout,
    UnitActivations,
    UnitGroups,
    UnitPerformance,
    fit_readout,
    fit_unit_readouts,
    unit_fields,
    unit_performance,
)

HEADS, HIDDEN, VOCAB, K, B, T, LAYER = 4, 32, 100, 3, 8, 6, 1
HEAD_DIM = HIDDEN // HEADS


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """A tiny random BERT classifier (2 layers, 4 heads, hidden 32) with eager attention."""
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2,
                                     num_attention_heads=HEADS, intermediate_size=64, max_position_embeddings=32,
                                     num_labels=K, attn_implementation="eager")
    return transformers.BertForSequenceClassification(config).eval()


@pytest.fixture(scope="module")
def batches() -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    out = []
    for _ in range(3):
        ids = torch.randint(3, VOCAB, (B, T), generator=generator)
        mask = torch.ones(B, T, dtype=torch.long)
        mask[::3, -2:] = 0  # some padding
        out.append(({"input_ids": ids, "attention_mask": mask}, torch.randint(K, (B,), generator=generator)))
    return out


def naive_fields(model, site: str, index: torch.Tensor, batches, readout: Readout, silence: str) -> torch.Tensor:
    """(N, K): one silenced forward per batch keeping only the nodes `index`, read at [CLS] through the readout."""
    mask = torch.zeros(num_units(model, site))
    mask[index] = 1
    means = readout.mean if silence == "mean" else None
    name = site_hook(model, LAYER, site)
    rows = []
    with torch.no_grad():
        for inputs, _ in batches:
            with silence_units(model, LAYER, site, mask, means), capture(model, [name]) as seen:
                model(**inputs)
                rows.append(seen[name][:, 0].double())
    h = torch.cat(rows)
    return h @ readout.weight.double().T + readout.bias.double()


def naive_scores(fields: list[torch.Tensor], silent: torch.Tensor, labels: torch.Tensor):
    """label_output (normalised V), confusion and label_accuracy from per-unit fields, by loops."""
    outputs, confusions, accuracies = [], [], []
    for z in fields:
        v = torch.zeros(K, K, dtype=torch.float64)
        confusion = torch.zeros(K, K, dtype=torch.float64)
        for i in range(len(labels)):
            v[labels[i]] += z[i] - silent[i]
            confusion[labels[i], z[i].argmax()] += 1
        outputs.append(v / v.abs().max())
        confusions.append(confusion)
        accuracies.append(torch.diagonal(confusion) / torch.bincount(labels, minlength=K).double().clamp(min=1))
    return torch.stack(outputs), torch.stack(confusions), torch.stack(accuracies)


@pytest.mark.parametrize("site", ["heads", "attention", "mlp"])
@pytest.mark.parametrize("silence", ["zero", "mean"])
def test_one_forward_equals_one_silenced_forward_per_unit(model, batches, site, silence):
    (collected,) = measure(model, [UnitActivations(LAYER, site, "cls")], batches)
    activations, labels = collected.activations, collected.labels
    assert activations.shape == (3 * B, HIDDEN)
    readout = fit_readout(activations, labels, K, iterations=30)
    nodes, heads = UnitGroups.nodes(HIDDEN), UnitGroups.heads(HEADS, HEAD_DIM)
    silent = naive_fields(model, site, torch.tensor([], dtype=torch.long), batches, readout, silence)
    for groups in (nodes, heads):
        (fast,) = measure(model, [UnitPerformance(LAYER, readout, groups, site, "cls", silence)], batches)
        assert fast.label_output.shape == (len(groups), K, K)
        fields = [naive_fields(model, site, index, batches, readout, silence) for index in groups.index]
        label_output, confusion, label_accuracy = naive_scores(fields, silent, labels)
        torch.testing.assert_close(fast.label_output, label_output, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fast.confusion, confusion)
        torch.testing.assert_close(fast.label_accuracy, label_accuracy, atol=1e-5, rtol=1e-5)
        assert fast.units == groups.names and fast.settings["silence"] == silence
    # the unsilenced forward through the readout gives the full accuracy
    everything = naive_fields(model, site, torch.arange(HIDDEN), batches, readout, silence)
    assert fast.full_accuracy == pytest.approx(float((everything.argmax(-1) == labels).double().mean()))


def test_unit_fields_equal_the_silenced_activations_through_the_readout(model, batches):
    """The other direction: unit_fields on the unsilenced activations equals the readout of silenced ones."""
    (collected,) = measure(model, [UnitActivations(0, "heads", "cls")], batches)
    readout = Readout(torch.randn(K, HIDDEN), torch.randn(K), collected.activations.mean(0))
    groups = UnitGroups.custom([[1, 9], [30, 31]], HIDDEN)
    fields = unit_fields(collected.activations, readout, groups, "mean")
    for g, index in enumerate(groups.index):
        mask = torch.zeros(HIDDEN)
        mask[index] = 1
        h = collected.activations * mask + readout.mean * (1 - mask)
        torch.testing.assert_close(fields[:, g], h @ readout.weight.T + readout.bias, atol=1e-5, rtol=1e-5)


# --- pools -----------------------------------------------------------------------------------------------------

def site_activations(model, batch, site: str) -> torch.Tensor:
    name = site_hook(model, LAYER, site)
    with torch.no_grad(), capture(model, [name]) as seen:
        model(**batch)
        return seen[name].clone()


@pytest.mark.parametrize("site", ["heads", "mlp"])
def test_pools_cls_mean_masked(model, batches, site):
    inputs, labels = batches[0]
    h = site_activations(model, inputs, site)
    assert h.shape == (B, T, HIDDEN)
    targets = torch.full((B, T), -100)
    chosen = [(0, 1), (0, 4), (2, 0), (5, 3), (7, 5)]
    for n, (b, t) in enumerate(chosen):
        targets[b, t] = n % K
    results = measure(model, [UnitActivations(LAYER, site, "cls"), UnitActivations(LAYER, site, "mean")],
                      [(inputs, labels)])
    (masked,) = measure(model, [UnitActivations(LAYER, site, "masked")], [(inputs, targets)])
    cls, mean = results
    assert cls.activations.shape == mean.activations.shape == (B, HIDDEN)
    torch.testing.assert_close(cls.activations, h[:, 0])
    weights = inputs["attention_mask"].float().unsqueeze(-1)
    torch.testing.assert_close(mean.activations, (h * weights).sum(1) / weights.sum(1))
    assert not torch.allclose(mean.activations, h.mean(1))  # the padding is left out
    assert torch.equal(cls.labels, labels) and torch.equal(mean.labels, labels)
    assert masked.activations.shape == (len(chosen), HIDDEN)
    torch.testing.assert_close(masked.activations, torch.stack([h[b, t] for b, t in chosen]))
    assert masked.labels.tolist() == [n % K for n in range(len(chosen))]


def test_masked_pool_accumulates_over_batches(model, batches):
    pairs = []
    for n, (inputs, _) in enumerate(batches):
        targets = torch.full((B, T), -100)
        targets[n, : n + 1] = 2
        pairs.append((inputs, targets))
    (result,) = measure(model, [UnitActivations(LAYER, "attention", "masked")], pairs)
    assert result.activations.shape == (1 + 2 + 3, HIDDEN) and result.labels.tolist() == [2] * 6


# --- unit groups -----------------------------------------------------------------------------------------------

def test_nodes_and_heads_groups():
    nodes = UnitGroups.nodes(5)
    assert nodes.index.shape == (5, 1) and nodes.index[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert nodes.names == ["n0", "n1", "n2", "n3", "n4"] and nodes.kind == "node" and len(nodes) == 5
    heads = UnitGroups.heads(3, 4)
    assert heads.index.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert heads.names == ["h0", "h1", "h2"] and heads.kind == "head" and len(heads) == 3


def test_head_subsets():
    heads, head_dim, size, count = 3, 8, 3, 5
    groups = UnitGroups.head_subsets(heads, head_dim, size, count, torch.Generator().manual_seed(7))
    assert groups.index.shape == (heads * count, size) and groups.kind == "subset3"
    assert groups.names[0] == "h0/3#0" and groups.names[-1] == "h2/3#4" and len(groups.names) == heads * count
    for row, index in enumerate(groups.index.tolist()):
        assert {i // head_dim for i in index} == {row // count}  # inside the head the name says
        assert len(set(index)) == size and index == sorted(index)
    again = UnitGroups.head_subsets(heads, head_dim, size, count, torch.Generator().manual_seed(7))
    other = UnitGroups.head_subsets(heads, head_dim, size, count, torch.Generator().manual_seed(8))
    assert torch.equal(groups.index, again.index) and not torch.equal(groups.index, other.index)
    full = UnitGroups.head_subsets(2, 4, 4, 2, torch.Generator().manual_seed(0))
    assert full.index.tolist() == [[0, 1, 2, 3], [0, 1, 2, 3], [4, 5, 6, 7], [4, 5, 6, 7]]


@pytest.mark.parametrize("size", [0, 9])
def test_head_subset_size_out_of_range(size):
    with pytest.raises(GoldstoneError, match=f"subset size {size} is not between 1 and the head size 8"):
        UnitGroups.head_subsets(2, 8, size, 3, torch.Generator().manual_seed(0))


def test_custom_groups():
    groups = UnitGroups.custom([[0, 4], [2, 3]], 5)
    assert groups.names == ["0+4", "2+3"] and groups.kind == "subset" and groups.index.dtype == torch.long
    with pytest.raises(GoldstoneError, match=r"node index 7 out of range: the site has 5 nodes \(0\.\.4\)"):
        UnitGroups.custom([[0, 7]], 5)
    with pytest.raises(GoldstoneError, match="node index -1 out of range"):
        UnitGroups.custom([[-1, 2]], 5)
    with pytest.raises(GoldstoneError, match="must be"):
        UnitGroups.custom([0, 1], 5)


# --- readouts --------------------------------------------------------------------------------------------------

def separable(n: int = 240, nodes: int = 6, k: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % k
    centres = 4 * torch.randn(k, nodes, generator=generator)
    return centres[labels] + 0.5 * torch.randn(n, nodes, generator=generator), labels


def test_fit_readout_learns_a_separable_problem_and_node_fields_add_up():
    x, y = separable()
    readout = fit_readout(x, y, 3, iterations=100)
    assert readout.weight.shape == (3, 6) and readout.bias.shape == (3,) and readout.num_outputs == 3
    torch.testing.assert_close(readout.mean, x.mean(0))
    logits = x @ readout.weight.T + readout.bias
    assert float((logits.argmax(-1) == y).float().mean()) > 0.95
    everything = UnitGroups.custom([list(range(6))], 6)
    for silence in ("zero", "mean"):  # nothing is silenced: the full logits
        torch.testing.assert_close(unit_fields(x, readout, everything, silence)[:, 0], logits, atol=1e-4, rtol=1e-4)
    single = unit_fields(x, readout, UnitGroups.nodes(6), "zero")  # each node adds W[:, j] h_j
    torch.testing.assert_close(single.sum(1) - 5 * readout.bias, logits, atol=1e-4, rtol=1e-4)
    result = unit_performance(x, y, readout, UnitGroups.nodes(6))
    assert result.full_accuracy > 0.95


def test_retrained_readouts_find_the_only_informative_node():
    generator = torch.Generator().manual_seed(3)
    labels = torch.arange(180) % 3
    x = torch.randn(180, 4, generator=generator)
    x[:, 0] = 3 * labels + 0.3 * torch.randn(180, generator=generator)
    groups = UnitGroups.nodes(4)
    weight, bias = fit_unit_readouts(x, labels, groups, 3)
    assert weight.shape == (4, 3, 1) and bias.shape == (4, 3)
    readout = fit_readout(x, labels, 3, iterations=50)
    result = unit_performance(x, labels, readout, groups, unit_readout=(weight, bias))
    assert result.settings["readout"] == "retrained" and result.settings["silence"] == "alone"
    assert float(result.accuracy[0]) > 0.95
    assert float(result.accuracy[1:].max()) < 0.6
    assert int(result.predicted_labels[0]) == 3


# --- bad inputs ------------------------------------------------------------------------------------------------

def test_labels_beyond_the_readout_are_refused():
    x, y = separable(k=3)
    readout = fit_readout(x, y, 3, iterations=20)
    bad = y.clone()
    bad[5] = 4
    with pytest.raises(GoldstoneError, match="label 4 out of range: the readout has 3 outputs"):
        unit_performance(x, bad, readout, UnitGroups.nodes(6))
    with pytest.raises(GoldstoneError, match="label 4 out of range"):
        fit_readout(x, bad, 3)
    with pytest.raises(GoldstoneError, match="label 4 out of range"):
        fit_unit_readouts(x, bad, UnitGroups.nodes(6), 3)
    with pytest.raises(GoldstoneError, match="no examples"):
        fit_readout(x[:0], y[:0], 3)


def test_unknown_silence_and_pool_are_refused():
    x, y = separable()
    readout = Readout(torch.randn(3, 6), torch.zeros(3), x.mean(0))
    with pytest.raises(GoldstoneError, match="unknown silence 'half'"):
        unit_performance(x, y, readout, UnitGroups.nodes(6), silence="half")
    with pytest.raises(GoldstoneError, match="unknown silence 'half'"):
        UnitPerformance(0, readout, UnitGroups.nodes(6), silence="half")
    with pytest.raises(GoldstoneError, match="unknown pool 'max'"):
        UnitActivations(0, "heads", "max")
    with pytest.raises(GoldstoneError, match="unknown site 'ffn'"):
        UnitActivations(0, "ffn").hook_names(torch.nn.Linear(2, 2))


def test_a_readout_of_the_wrong_width_is_refused(model, batches):
    readout = Readout(torch.randn(K, 10), torch.zeros(K), torch.zeros(10))
    with pytest.raises(GoldstoneError, match=f"reads 10 nodes but site 'heads' has {HIDDEN}"):
        measure(model, [UnitPerformance(LAYER, readout, UnitGroups.nodes(10))], batches[:1])


# --- a synthetic case with a clear answer ---------------------------------------------------------------------

@pytest.mark.parametrize("silence", ["zero", "mean"])
def test_each_node_recognises_exactly_its_own_label(silence):
    k = 4
    generator = torch.Generator().manual_seed(5)
    labels = torch.arange(200) % k
    h = torch.nn.functional.one_hot(labels, k).float() + 1e-3 * torch.randn(200, k, generator=generator)
    readout = Readout(torch.eye(k), torch.zeros(k), h.mean(0))
    result = unit_performance(h, labels, readout, UnitGroups.nodes(k), silence)
    assert result.recognised.tolist() == torch.eye(k, dtype=torch.bool).tolist()
    assert result.labels_per_unit.tolist() == [1] * k
    assert torch.diagonal(result.label_accuracy).tolist() == [1.0] * k
    assert result.cluster.tolist() == (torch.full((k, k), -1) + torch.eye(k, dtype=torch.long)).tolist()
    assert result.noise.tolist() == [0] * k and torch.isinf(result.snr).all()
    above = torch.zeros(k, k, k, dtype=torch.bool)
    above[range(k), range(k), range(k)] = True
    assert torch.equal(result.label_output >= 0.3, above)
    torch.testing.assert_close(result.label_output[range(k), range(k), range(k)], torch.ones(k, dtype=torch.float64))
    assert result.count.tolist() == [50.0] * k and result.full_accuracy == 1.0
