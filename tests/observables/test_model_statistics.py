"""Weight statistics, attention patterns, loss curvature and representation drift against
independent computations."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from goldstone.core.monitor import Monitor
from goldstone.core.observable import measure
from goldstone.observables.alignment import linear_cka
from goldstone.observables.attention_patterns import AttentionPatterns, repeated_tokens
from goldstone.observables.entanglement import entanglement_profile, prime_factors, valley_width
from goldstone.observables.loss_curvature import LossCurvature
from goldstone.observables.representation_drift import RepresentationDrift, centred_gram, gram_cka
from goldstone.observables.weight_statistics import WeightStatistics


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 6)).double()


def test_weight_statistics_against_numpy_and_the_entanglement_profile():
    model, start = mlp(), mlp(1)
    (result,) = measure(model, [WeightStatistics(reference=start.state_dict())])
    assert result.names == ["0.weight", "2.weight", "4.weight"]
    for i, name in enumerate(result.names):
        w = dict(model.named_parameters())[name].detach()
        s = np.linalg.svd(w.numpy(), compute_uv=False)
        p = s / s.sum()
        assert result.norm[i] == pytest.approx(np.sqrt((s ** 2).sum()), rel=1e-12)
        assert result.stable_rank[i] == pytest.approx((s ** 2).sum() / s[0] ** 2, rel=1e-12)
        assert result.effective_rank[i] == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-12)
        centre = len(prime_factors(w.shape[0]))  # the row | column cut of the profile
        assert result.entanglement[i] == pytest.approx(float(entanglement_profile(w)[centre - 1]), rel=1e-10)
        delta = w - dict(start.named_parameters())[name].detach()
        assert result.delta_norm[i] == pytest.approx(float(delta.norm()), rel=1e-12)
        assert result.delta_entanglement[i] == pytest.approx(float(entanglement_profile(delta)[centre - 1]), rel=1e-10)
        dims = prime_factors(w.shape[0]) + prime_factors(w.shape[1])
        assert float(result.valley_width[i]) == float(valley_width(entanglement_profile(w), centre, dims))
        assert float(result.delta_valley_width[i]) == float(valley_width(entanglement_profile(delta), centre, dims))
    (alone,) = measure(model, [WeightStatistics()])
    assert alone.delta_norm is None and torch.equal(alone.norm, result.norm)


def reference_patterns(attentions, ids):
    """Per layer and head, the three scores by explicit loops over positions (the definitions)."""
    layers, heads = len(attentions), attentions[0].shape[1]
    sums, counts = np.zeros((3, layers, heads)), np.zeros(3)
    for b in range(ids.shape[0]):
        t = ids[b].tolist()
        for i in range(len(t)):
            keys = {0: [i - 1] if i else [], 1: [j for j in range(i) if t[j] == t[i]],
                    2: [j + 1 for j in range(i - 1) if t[j] == t[i]]}
            for pattern, chosen in keys.items():
                if chosen:
                    counts[pattern] += 1
                    for layer in range(layers):
                        sums[pattern, layer] += attentions[layer][b, :, i, chosen].double().sum(-1).numpy()
    return sums / counts[:, None, None]


def test_attention_patterns_against_their_definitions_and_an_induction_head():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=64, attn_implementation="eager")
    model = transformers.BertModel(config).eval()
    probe = repeated_tokens(60, length=10, batch=3, seed=1, low=5)
    probe["input_ids"][0, 3] = probe["input_ids"][0, 5]  # a duplicate inside the first half too
    (result,) = measure(model, [AttentionPatterns()], probe)
    with torch.no_grad():
        attentions = model(**probe, output_attentions=True).attentions
    expected = reference_patterns(attentions, probe["input_ids"])
    for i, pattern in enumerate(("previous_token", "duplicate_token", "induction")):
        assert getattr(result, pattern).numpy() == pytest.approx(expected[i], rel=1e-12)
    # a head that attends to the token after the previous occurrence scores one
    ids = probe["input_ids"][1:2]
    target = torch.zeros(1, 1, 20, 20, dtype=torch.float64)
    for i in range(10, 20):
        target[0, 0, i, i - 9] = 1.0
    for i in range(10):
        target[0, 0, i, max(i - 1, 0)] = 1.0

    class Fixed(nn.Module):
        def forward(self, input_ids, attention_mask=None, output_attentions=False):
            return transformers.modeling_outputs.BaseModelOutput(attentions=(target,))

    (fixed,) = measure(Fixed(), [AttentionPatterns()], {"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    assert float(fixed.induction[0, 0]) == pytest.approx(1.0)
    assert float(fixed.previous_token[0, 0]) == pytest.approx(9 / 19)


def test_sharpness_of_least_squares_is_the_top_eigenvalue_of_2xtx_over_n():
    torch.manual_seed(0)
    x, y = torch.randn(40, 5, dtype=torch.float64), torch.randn(40, 1, dtype=torch.float64)
    model = nn.Linear(5, 1, bias=False).double()
    observable = LossCurvature((x, y), nn.functional.mse_loss, iterations=200, tolerance=1e-12)
    (result,) = measure(model, [observable])
    top = float(torch.linalg.eigvalsh(2 * x.T @ x / len(x))[-1])
    assert float(result.sharpness) == pytest.approx(top, rel=1e-8)
    assert float(result.loss) == pytest.approx(float(nn.functional.mse_loss(model(x), y).detach()), rel=1e-12)
    assert all(p.grad is None for p in model.parameters())  # leaves the model's gradients alone


def test_representation_drift_is_linear_cka_and_runs_at_due_steps_only():
    torch.manual_seed(0)
    a, b = torch.randn(16, 7, dtype=torch.float64), torch.randn(16, 5, dtype=torch.float64)
    assert float(gram_cka(centred_gram(a), centred_gram(b))) == pytest.approx(linear_cka(a, b), rel=1e-12)
    assert float(gram_cka(centred_gram(a), centred_gram(3 * a @ torch.linalg.qr(torch.randn(7, 7, dtype=torch.float64))[0]))) \
        == pytest.approx(1.0, rel=1e-12)
    model, x = mlp(), torch.randn(16, 12, dtype=torch.float64)
    drift = RepresentationDrift(layers=["1", "3"])
    monitor = Monitor(model, [drift], x, schedule=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(5):
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        monitor(step)
        optimizer.step()
    frame = monitor.frame()
    assert sorted(frame.step.unique()) == [0, 2, 4] and drift._updates == 3
    previous = frame[frame.metric == "cka_previous"]
    assert previous[previous.step == 0].value.isna().all()
    later = previous[previous.step > 0].value
    assert ((later > 0) & (later < 1)).all() and not math.isnan(later.sum())
