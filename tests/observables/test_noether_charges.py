"""Measured Noether charges against the exact recursions (research notes' tolerances, section 5.3)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.observable import Probe
from goldstone.observables.noether_charges import NoetherCharges
from goldstone.observables.symmetry_detection import detect_symmetries
from goldstone.theory.noether import recursions


def model_and_data(kind, dtype, eps=1e-12):
    torch.manual_seed(0)
    if kind == "bn":
        model = nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16, eps=eps), nn.ReLU(), nn.Linear(16, 16),
                              nn.BatchNorm1d(16, eps=eps), nn.ReLU(), nn.Linear(16, 5))
    else:
        model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 5))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(512, 10, generator=g, dtype=dtype), torch.randint(0, 5, (512,), generator=g)
    return model.to(dtype), x, y


def train(model, x, y, optimizer, steps=200, schedule=None, every=1):
    groups = detect_symmetries(model, [(x[:64], y[:64])], lambda out, t: F.cross_entropy(out, t))
    charges = NoetherCharges(groups, every)
    feed(charges, model, x, y, optimizer, steps, schedule)
    return charges.compute()


def feed(charges, model, x, y, optimizer, steps, schedule=None):
    """`steps` SGD steps on seeded batches of 64, `charges` updated before each and after the last."""
    g = torch.Generator().manual_seed(2)
    for step in range(steps):
        if schedule is not None:
            for group in optimizer.param_groups:
                group["lr"] = schedule(step)
        idx = torch.randint(0, len(x), (64,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        charges.update(Probe(model, step=step, optimizer=optimizer))
        optimizer.step()
    charges.update(Probe(model, step=steps, optimizer=optimizer))


def worst(result, kind, prediction="exact"):
    columns = [i for i, k in enumerate(result.kinds) if k == kind]
    return float(result.relative_error(prediction)[:, columns].max())


@pytest.mark.parametrize("momentum,dampening", [(0.0, 0.0), (0.9, 0.0), (0.9, 0.3)])
@pytest.mark.parametrize("kind", ["bn", "plain"])
def test_exact_recursions_hold_to_1e_10_in_float64(kind, momentum, dampening):
    model, x, y = model_and_data(kind, torch.float64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum, dampening=dampening, weight_decay=1e-3)
    result = train(model, x, y, optimizer)
    assert set(result.theory) == {"exact"}
    for k in ("translation", "rescale") + (("scale",) if kind == "bn" else ()):
        assert worst(result, k) < (1e-8 if k == "scale" else 1e-10), k
    measured, predicted = result.noether_charge[:-1], result.noether_charge_exact[:-1]
    assert torch.allclose(measured, predicted, rtol=1e-6, atol=1e-12, equal_nan=True)
    assert torch.isfinite(measured[:, [k != "translation" for k in result.kinds]]).all()


def test_exact_recursions_hold_in_float32_and_under_a_learning_rate_schedule():
    model, x, y = model_and_data("bn", torch.float32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    result = train(model, x, y, optimizer, schedule=lambda step: 0.1 if step < 100 else 0.02)
    assert worst(result, "translation") < 1e-4 and worst(result, "rescale") < 1e-4
    assert worst(result, "scale") < 1e-5
    assert result.lr[0, 0] == 0.1 and result.lr[150, 0] == pytest.approx(0.02)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_continuous_forms_within_two_percent(momentum):
    model, x, y = model_and_data("bn", torch.float64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=momentum, weight_decay=1e-3)
    result = train(model, x, y, optimizer)
    for k in ("translation", "scale", "rescale"):
        assert worst(result, k, "continuous") < 0.02, k


def test_default_batchnorm_eps_scale_within_two_percent():
    model, x, y = model_and_data("bn", torch.float32, eps=1e-5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    assert worst(train(model, x, y, optimizer), "scale") < 0.02


def test_nld_equation_17_without_momentum():
    """Noether's Learning Dynamics, Eq. 17 at beta = 0 follows the measured r^4 = q^2 (notes: 2e-5)."""
    model, x, y = model_and_data("bn", torch.float64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-3)
    result = train(model, x, y, optimizer, steps=300)
    columns = [i for i, k in enumerate(result.kinds) if k == "scale"]
    q = result.charge[:, columns]
    r4 = recursions.nld_radius4(q[0], result.gradient_energy[:-1, columns], q, 0.1, 1e-3, 0.0)
    assert float(((r4.sqrt() - q).abs() / q).max()) < 1e-2


@pytest.mark.parametrize("make,reason", [
    (lambda p: torch.optim.AdamW(p, lr=1e-3), "AdamW has no closed form"),
    (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True), "Nesterov"),
])
def test_optimisers_without_closed_form_are_marked_not_applicable(make, reason):
    model, x, y = model_and_data("plain", torch.float32)
    result = train(model, x, y, make(model.parameters()), steps=20)
    assert all(t.startswith("not applicable") and reason in t for t in result.theory)
    assert torch.isnan(result.exact).all() and torch.isfinite(result.charge).all()


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_mixed_weight_decay_inside_a_group_uses_the_measured_decay_term(momentum):
    model, x, y = model_and_data("plain", torch.float64)
    decay = [p for p in model.parameters() if p.dim() > 1]
    rest = [p for p in model.parameters() if p.dim() == 1]
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": 1e-2}, {"params": rest, "weight_decay": 0.0}],
                                lr=0.1, momentum=momentum)
    result = train(model, x, y, optimizer, steps=100)
    measured = [i for i, t in enumerate(result.theory) if "measured" in t]
    assert {result.names[i] for i in measured} == {n for n, k in zip(result.names, result.kinds) if k == "rescale"}
    assert float(result.relative_error("exact")[:, measured].max()) < 1e-10
    assert torch.isnan(result.continuous[:, measured]).all()


def test_different_learning_rates_inside_a_group_are_not_applicable():
    model, x, y = model_and_data("plain", torch.float32)
    optimizer = torch.optim.SGD([{"params": [p for p in model.parameters() if p.dim() > 1]},
                                 {"params": [p for p in model.parameters() if p.dim() == 1], "lr": 0.01}], lr=0.1)
    result = train(model, x, y, optimizer, steps=10)
    flagged = {result.names[i] for i, t in enumerate(result.theory) if t.startswith("not applicable")}
    assert flagged == {n for n, k in zip(result.names, result.kinds) if k == "rescale"}


def test_without_an_optimizer_the_charges_are_measured_and_the_theory_is_not_applicable():
    """Saved checkpoints have no optimiser: the charges are those measured with one, at the same weights."""
    model, x, y = model_and_data("plain", torch.float32)
    groups = detect_symmetries(model, [(x[:64], y[:64])], lambda out, t: F.cross_entropy(out, t))
    bare, tracked = NoetherCharges(groups), NoetherCharges(groups)
    bare.update(Probe(model))
    tracked.update(Probe(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    saved, live = bare.compute(), tracked.compute()
    assert torch.equal(saved.charge, live.charge) and torch.equal(saved.reference, live.reference)
    assert all(t.startswith("not applicable: no optimiser") for t in saved.theory)
    assert saved.exact.isnan().all()
    assert repr(saved).startswith("NoetherChargesResult(1 steps, ") and repr(saved).count("not applicable") == 1
    table = live.summary()
    assert table.groups.sum() == len(groups) and table.exact_theory.sum() == len(groups)
    assert saved.summary().exact_theory.sum() == 0 and saved.summary().max_error_exact.isna().all()
    with pytest.raises(GoldstoneError, match="no symmetry groups"):
        NoetherCharges([])


def test_sparse_full_measurements_keep_the_exact_recursions():
    """every = 7: charges measured every 7th update, the recursions still driven at every step."""
    model, x, y = model_and_data("bn", torch.float64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    result = train(model, x, y, optimizer, steps=50, every=7)
    measured = ~torch.isnan(result.charge[:, 0])
    assert measured.nonzero().squeeze(1).tolist() == list(range(0, 51, 7))
    error = result.relative_error("exact")[measured]
    scale = [i for i, k in enumerate(result.kinds) if k == "scale"]
    others = [i for i, k in enumerate(result.kinds) if k != "scale"]
    assert float(error[:, others].max()) < 1e-10 and float(error[:, scale].max()) < 1e-8
    assert torch.isfinite(result.exact).all()


def test_compute_classifies_groups_by_param_group_over_many_steps():
    """One optimiser param group per module, weight decays differing: the recursions run once per
    class of param groups with one schedule (not per distinct per-group schedule row, which grows
    with steps x groups), and give every group what its own schedule gives it alone."""
    from goldstone.observables.noether_charges import _hyper_classes

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32, eps=1e-12), nn.ReLU(), nn.Linear(32, 32),
                          nn.BatchNorm1d(32, eps=1e-12), nn.ReLU(), nn.Linear(32, 5)).double()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(512, 10, generator=g, dtype=torch.float64), torch.randint(0, 5, (512,), generator=g)
    decays = {"0": 1e-3, "1": 0.0, "3": 2e-3, "4": 0.0, "6": 1e-3}  # fc1 and the head alike, BatchNorm undecayed
    optimizer = torch.optim.SGD([{"params": list(model[int(m)].parameters()), "weight_decay": wd}
                                 for m, wd in decays.items()], lr=0.1, momentum=0.9)
    groups = detect_symmetries(model, [(x[:64], y[:64])], lambda out, t: F.cross_entropy(out, t))
    charges = NoetherCharges(groups, every=10)
    feed(charges, model, x, y, optimizer, 300, lambda step: 0.1 if step < 150 else 0.03)
    result = charges.compute()

    kinds = {k: [i for i, kind in enumerate(result.kinds) if kind == k] for k in ("scale", "rescale", "translation")}
    assert all(result.theory[i] == "exact" for i in kinds["scale"] + kinds["translation"])
    assert all("measured" in result.theory[i] for i in kinds["rescale"])  # BatchNorm undecayed, the next Linear not
    measured = ~torch.isnan(result.charge[:, 0])
    assert float(result.relative_error("exact")[measured].max()) < 1e-8
    # classes: {fc1 scale, head translation} (equal schedules), {fc2 scale}, {rescale, measured decay}
    hyper = torch.stack([r["hyper"] for r in charges._rows])[:-1]
    ok = torch.tensor([t.startswith("exact") for t in result.theory])
    flags = torch.tensor(["measured" in t for t in result.theory])
    classes = _hyper_classes(hyper, charges._first, ok, flags)
    assert sorted(len(c) for c in classes) == sorted([32 + 33, 32, 64])
    # the same partition as the distinct per-group schedules (each group's first param group's rows)
    schedules = torch.cat([hyper[:, charges._first].permute(1, 0, 2).reshape(len(result.kinds), -1),
                           flags[:, None].double()], 1)
    _, inverse = torch.unique(schedules, dim=0, return_inverse=True)
    assert {frozenset(c.tolist()) for c in classes} == {frozenset(torch.nonzero(inverse == c).squeeze(1).tolist())
                                                       for c in range(int(inverse.max()) + 1)}
    # each exact group's prediction is that of the recursion run on its own schedule alone
    steps = result.charge.shape[0] - 1
    for i in kinds["scale"][::7] + kinds["translation"][::7]:
        h = (result.lr[:-1, i], result.weight_decay[:-1, i], result.momentum[:-1, i])
        alone = (recursions.exact_quadratic(result.charge[0, [i]], result.energy[:-1, [i]], *h)[0]
                 if result.kinds[i] == "scale" else recursions.exact_translation(result.charge[0, [i]], steps, *h))
        assert torch.equal(alone[:, 0], result.exact[:, i]), result.names[i]
