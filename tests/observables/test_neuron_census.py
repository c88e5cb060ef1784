"""Neuron census on hand-built models with known dead and duplicated neurons; NC metrics on exact cases."""

import pytest
import torch
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.monitor import scan_checkpoints
from goldstone.observables import NeuronCensus, neural_collapse, neuron_census
from goldstone.observables.neuron_census import closeness, greedy_count, identical_groups, ranks


def planted():
    """ReLU layer: unit 3 dead, unit 5 a copy of unit 4, unit 9 a copy of 4 at twice the norm (not identical);
    tanh layer: unit 7 = -unit 6 (identical under the odd activation)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 5))
    with torch.no_grad():
        model[0].weight[3], model[0].bias[3], model[2].weight[:, 3] = 0, 0, 0
        for target, factor in ((5, 1.0), (9, 2.0)):
            model[0].weight[target] = factor * model[0].weight[4]
            model[0].bias[target] = factor * model[0].bias[4]
            model[2].weight[:, target] = factor * model[2].weight[:, 4]
        model[2].weight[7], model[2].bias[7], model[4].weight[:, 7] = (-model[2].weight[6], -model[2].bias[6],
                                                                       -model[4].weight[:, 6])
    return model


def test_census_finds_the_planted_dead_and_identical_neurons():
    table = neuron_census(planted(), [torch.randn(256, 10)]).table().set_index("layer")
    relu, tanh = table.loc["0 → 2"], table.loc["2 → 4"]
    assert (relu.neurons, relu.dead, relu.independent, relu.independent_greedy) == (16, 1, 14, 14)
    assert relu.dead_by_activation >= 1 and relu.activation == "ReLU"
    assert (tanh.neurons, tanh.dead, tanh.independent) == (12, 0, 11)


def test_batchnorm_between_is_part_of_the_neuron_and_conv_flatten_chains():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    table = neuron_census(model.eval(), [torch.randn(8, 1, 8, 8)]).table()
    assert list(table.layer) == ["0 → 4"] and table.neurons[0] == 4 and table.dead[0] == 0


def test_union_find_groups_are_transitive_where_greedy_is_order_dependent():
    # a chain a ~ b ~ c with a and c farther apart than the threshold: one component, two greedy groups
    a = torch.tensor([[1.0, 0.0], [0.96, 0.28], [0.85, 0.53]], dtype=torch.float64)
    assert identical_groups(a, same=0.1).unique().numel() == 1
    assert greedy_count(closeness(a, same=0.1)) == 2


def test_ranks_of_a_known_matrix():
    matrix = torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.0]))
    r = ranks(matrix)
    assert r["numerical_rank"] == 3 and r["stable_rank"] == pytest.approx(14 / 9)
    p = torch.tensor([0.5, 1 / 3, 1 / 6])
    assert r["effective_rank"] == pytest.approx(float(torch.exp(-(p * p.log()).sum())))


def test_balance_is_zero_for_a_balanced_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6, bias=False), nn.ReLU(), nn.Linear(6, 4, bias=False))
    with torch.no_grad():  # |w_in,i| = |w_out,i| per unit
        scale = model[2].weight.norm(dim=0) / model[0].weight.norm(dim=1)
        model[0].weight.mul_(scale[:, None])
    assert neuron_census(model, example=torch.randn(2, 4)).balance[0] < 1e-6


def test_census_observable_over_checkpoints(tmp_path):
    from safetensors.torch import save_file

    model = planted()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "step_10.safetensors")
    with torch.no_grad():
        model[0].weight[4].zero_(), model[0].bias[4].zero_(), model[2].weight[:, 4].zero_()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "step_20.safetensors")
    frame = scan_checkpoints(model, [tmp_path / "step_20.safetensors", tmp_path / "step_10.safetensors"],
                             [NeuronCensus(example=torch.randn(2, 10))])
    dead = frame[(frame.metric == "dead") & (frame.layer == "0 → 2")].set_index("step").value
    assert dead.to_dict() == {10: 1.0, 20: 2.0}


@pytest.mark.parametrize("kwargs,message", [({"dead": 1.5}, "threshold 'dead'=1.5 must lie in (0, 1)"),
                                            ({"same": 0.0}, "threshold 'same'=0.0")])
def test_thresholds_outside_the_unit_interval_are_refused(kwargs, message):
    with pytest.raises(GoldstoneError, match=message.replace("(", r"\(").replace(")", r"\)")):
        neuron_census(planted(), example=torch.randn(2, 10), **kwargs)


def test_a_model_without_layer_pairs_is_named():
    with pytest.raises(GoldstoneError, match="no pair of Linear/Conv layers"):
        neuron_census(nn.Sequential(nn.Linear(3, 2)), example=torch.randn(2, 3))


def test_neural_collapse_of_a_simplex_and_of_noise():
    k = 4
    etf = torch.eye(k, dtype=torch.float64) - 1 / k
    labels = torch.arange(k).repeat_interleave(6)
    collapsed = neural_collapse(etf[labels], labels, weight=etf)
    assert collapsed.nc1 == 0 and collapsed.nc4 == 0
    assert collapsed.max_angle_means < 1e-12 and collapsed.nc3 < 1e-12
    noisy = neural_collapse(etf[labels] + torch.randn(len(labels), k, dtype=torch.float64), labels, weight=etf)
    assert noisy.nc1 > 0.1
    with pytest.raises(GoldstoneError, match="at least two classes"):
        neural_collapse(etf[:3], torch.zeros(3, dtype=torch.long))
    with pytest.raises(GoldstoneError, match="class 2 has a single example"):
        neural_collapse(etf[[0, 0, 1, 1, 2]], torch.tensor([0, 0, 1, 1, 2]))


def test_a_conv_consumer_reads_one_kernel_per_channel():
    """Conv -> ReLU -> Conv: a channel's outgoing weights are its slice of every kernel of the next
    conv; two channels with the same incoming and outgoing kernels are one independent neuron."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    with torch.no_grad():
        model[0].weight[1], model[0].bias[1] = model[0].weight[0], model[0].bias[0]
        model[2].weight[:, 1] = model[2].weight[:, 0]
    table = neuron_census(model, example=torch.randn(2, 1, 8, 8)).table()
    assert table.neurons.tolist() == [4] and table.independent.tolist() == [3]
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        neuron_census("bert")
    with pytest.warns(UserWarning, match="zero-element"):  # torch says so when it builds a layer of width 0
        empty = nn.Sequential(nn.Linear(4, 0), nn.ReLU(), nn.Linear(0, 3))
    with pytest.raises(GoldstoneError, match="has no neurons"):
        neuron_census(empty, example=torch.randn(2, 4))


def test_neural_collapse_centres_on_class_means_or_samples():
    """Balanced classes: both centres agree (to round-off). Imbalanced ones: each equals a NumPy reference of its
    own convention (M centred on the mean of the class means, or on the sample-weighted mean as
    tding1/Neural-Collapse's code does), and NC3 differs between them."""
    import numpy as np

    generator = torch.Generator().manual_seed(0)
    k, p = 4, 6
    weight = torch.randn(k, p, dtype=torch.float64, generator=generator)
    balanced = torch.arange(k).repeat_interleave(10)
    features = torch.randn(len(balanced), p, dtype=torch.float64, generator=generator) + 3 * weight[balanced]
    one, other = (neural_collapse(features, balanced, weight, centre=c) for c in ("class_means", "samples"))
    assert float(one.nc3) == pytest.approx(float(other.nc3), rel=1e-12)
    assert float(one.nc1) == pytest.approx(float(other.nc1), rel=1e-12)

    imbalanced = torch.cat([torch.full((n,), c) for c, n in enumerate((40, 10, 5, 3))])
    features = torch.randn(len(imbalanced), p, dtype=torch.float64, generator=generator) + 3 * weight[imbalanced]
    x, y, w = features.numpy(), imbalanced.numpy(), weight.numpy()
    means = np.stack([x[y == c].mean(0) for c in range(k)])
    for centre, mu in (("class_means", means.mean(0)), ("samples", x.mean(0))):
        m = means - mu
        within = x - means[y]
        nc1 = np.trace(within.T @ within / len(x) @ np.linalg.pinv(m.T @ m / k)) / k
        nc3 = ((w / np.linalg.norm(w) - m / np.linalg.norm(m)) ** 2).sum()
        result = neural_collapse(features, imbalanced, weight, centre=centre)
        assert float(result.nc1) == pytest.approx(nc1, rel=1e-10) and float(result.nc3) == pytest.approx(nc3, rel=1e-10)
    assert abs(neural_collapse(features, imbalanced, weight).nc3 -
               neural_collapse(features, imbalanced, weight, centre="samples").nc3) > 0.01
    with pytest.raises(ValueError, match="centre must be one of"):
        neural_collapse(features, imbalanced, weight, centre="global")
