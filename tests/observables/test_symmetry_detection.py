"""Symmetry detection finds exactly the expected groups on hand-built models, and flags what breaks them."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from goldstone.observables.symmetry_detection import detect_symmetries


def cross_entropy(outputs, targets):
    return F.cross_entropy(outputs.flatten(0, -2), targets.flatten())


def batches(features=10, classes=5, n=2):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(64, features, generator=g), torch.randint(0, classes, (64,), generator=g)) for _ in range(n)]


def found(symmetries):
    return sorted((f.kind, f.name, f.count) for f in symmetries.families())


def bn_mlp(eps=1e-5):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16, eps=eps), nn.ReLU(), nn.Linear(16, 12),
                         nn.BatchNorm1d(12, eps=eps), nn.ReLU(), nn.Linear(12, 5))


def test_batchnorm_mlp_has_scale_rescale_and_translation_groups():
    symmetries = detect_symmetries(bn_mlp(), batches(), cross_entropy)
    assert symmetries.method == "fx"
    assert found(symmetries) == [("rescale", "1 ↔ 3", 16), ("rescale", "4 ↔ 6", 12), ("scale", "0 → 1", 16),
                                 ("scale", "3 → 4", 12), ("translation", "6 columns", 12), ("translation", "6.bias", 1)]
    by_kind = {}
    for g in symmetries:
        by_kind.setdefault(g.kind, []).append(g.quality)
    assert max(by_kind["scale"]) < 1e-3  # BatchNorm's eps: violation about eps / sigma^2
    assert max(by_kind["rescale"] + by_kind["translation"]) < 1e-5
    scale = next(g for g in symmetries if g.kind == "scale")
    assert scale.parameters == ["0.weight", "0.bias"] and "gradient is zero" in scale.note


def test_scale_symmetry_is_exact_when_batchnorm_eps_vanishes():
    symmetries = detect_symmetries(bn_mlp(eps=1e-12).double(), [(x.double(), y) for x, y in batches()], cross_entropy)
    assert max(g.quality for g in symmetries if g.kind == "scale") < 1e-9


def test_plain_relu_mlp_has_rescale_per_hidden_unit():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 5))
    symmetries = detect_symmetries(model, batches(), cross_entropy)
    assert found(symmetries) == [("rescale", "0 ↔ 2", 16), ("rescale", "2 ↔ 4", 8), ("translation", "4 columns", 8),
                                 ("translation", "4.bias", 1)]
    unit = next(g for g in symmetries if g.kind == "rescale")
    assert unit.parameters == ["0.weight", "0.bias", "2.weight"]


def test_gelu_mlp_has_no_rescale_symmetry():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.GELU(), nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 5))
    symmetries = detect_symmetries(model, batches(), cross_entropy)
    assert found(symmetries) == [("translation", "4 columns", 16), ("translation", "4.bias", 1)]
    assert any("GELU" in note for note in symmetries.notes)


class PreLNBlock(nn.Module):
    """Embedding, one pre-LN transformer block (self-attention, ReLU MLP), final LayerNorm, head."""

    def __init__(self, d=16, heads=4, vocab=11, tied=False):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.ln1, self.ln2, self.lnf = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp_in, self.act, self.mlp_out = nn.Linear(d, 4 * d), nn.ReLU(), nn.Linear(4 * d, d)
        self.head = nn.Linear(d, vocab)
        if tied:
            self.head.weight = self.emb.weight

    def forward(self, tokens):
        h = self.emb(tokens)
        a = self.ln1(h)
        h = h + self.attn(a, a, a, need_weights=False)[0]
        h = h + self.mlp_out(self.act(self.mlp_in(self.ln2(h))))
        return self.head(self.lnf(h))


def token_batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randint(0, 11, (8, 6), generator=g), torch.randint(0, 11, (8, 6), generator=g))]


def test_pre_ln_block_attention_and_layernorm_affine_groups():
    torch.manual_seed(0)
    symmetries = detect_symmetries(PreLNBlock(), token_batches(), cross_entropy)
    assert found(symmetries) == [
        ("rescale", "attn query ↔ key", 16), ("rescale", "attn value ↔ output", 16), ("rescale", "ln1 ↔ attn", 16),
        ("rescale", "ln2 ↔ mlp_in", 16), ("rescale", "lnf ↔ head", 16), ("rescale", "mlp_in ↔ mlp_out", 64),
        ("translation", "head columns", 16), ("translation", "head.bias", 1)]
    assert max(g.quality for g in symmetries) < 1e-5
    assert any("mlp_out" in note and "add" in note for note in symmetries.notes)  # the residual stream is flagged


def test_tied_head_loses_its_translation_and_rescale_groups():
    torch.manual_seed(0)
    symmetries = detect_symmetries(PreLNBlock(tied=True), token_batches(), cross_entropy)
    names = {f.name for f in symmetries.families()}
    assert "head columns" not in names and "lnf ↔ head" not in names and "head.bias" in names
    assert sum("tied to emb.weight" in note for note in symmetries.notes) == 2


def test_eval_mode_batchnorm_and_frozen_parameters_are_flagged():
    model = bn_mlp().eval()
    symmetries = detect_symmetries(model, batches(), cross_entropy)
    assert not any(g.kind == "scale" for g in symmetries)
    assert any("eval-mode BatchNorm" in note for note in symmetries.notes)
    model = bn_mlp()
    model[3].weight.requires_grad_(False)
    symmetries = detect_symmetries(model, batches(), cross_entropy)
    assert {f.name for f in symmetries.families()} == {"0 → 1", "4 ↔ 6", "6 columns", "6.bias"}
    assert sum("3.weight is frozen" in note for note in symmetries.notes) == 2


def test_loss_without_softmax_rejects_translation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 5))
    symmetries = detect_symmetries(model, batches(), lambda out, y: F.mse_loss(out, F.one_hot(y, 5).float()))
    assert found(symmetries) == [("rescale", "0 ↔ 2", 16)]
    assert {c.family.kind for c in symmetries.rejected} == {"translation"}
    assert min(c.violation for c in symmetries.rejected) > 1e-2


class Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(10, 16), nn.Linear(16, 16), nn.Linear(16, 5)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        if h.sum() > -1e9:
            h = torch.tanh(self.fc2(h))
        return self.fc3(h)


def test_untraceable_model_falls_back_and_says_so():
    torch.manual_seed(0)
    symmetries = detect_symmetries(Untraceable(), batches(), cross_entropy)
    assert symmetries.method == "module order"
    assert any("cannot trace" in note for note in symmetries.notes)
    assert found(symmetries) == [("rescale", "fc1 ↔ fc2", 16), ("translation", "fc3 columns", 16),
                                 ("translation", "fc3.bias", 1)]
    assert [c.family.name for c in symmetries.rejected] == ["fc2 ↔ fc3"]  # tanh between them


def test_model_without_symmetry_gives_a_clear_report():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 1))
    symmetries = detect_symmetries(model, batches(), lambda out, y: ((out.squeeze(1) - y.float()) ** 2).mean())
    assert list(symmetries) == []
    assert any("no symmetry" in note for note in symmetries.notes)


@pytest.mark.parametrize("kind", ["bn", "plain"])
def test_finite_transformation_of_every_accepted_group_keeps_the_loss(kind):
    model = bn_mlp(eps=1e-12).double() if kind == "bn" else nn.Sequential(
        nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 5)).double()
    data = [(x.double(), y) for x, y in batches()]
    symmetries = detect_symmetries(model, data, cross_entropy)
    params = {n: p.detach() for n, p in model.named_parameters()}
    x, y = data[0]
    before = cross_entropy(model(x), y)
    for family in symmetries.families():
        moved = family.transform(params, torch.full((family.count,), 1.7 if family.kind != "translation" else 0.3,
                                                    dtype=torch.float64))
        after = cross_entropy(torch.func.functional_call(model, {**params, **moved}, (x,)), y)
        assert torch.allclose(before, after, rtol=1e-9), family.name


def test_bad_arguments_are_named():
    """A NaN loss would accept every candidate; an empty batch, a bad tolerance and a loss that is
    not one number are refused, each naming the argument."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    ce = torch.nn.functional.cross_entropy
    with pytest.raises(ValueError, match="loss_fn returned nan on a batch"):
        detect_symmetries(model, [(x, y)], lambda out, t: ce(out, t) * float("nan"))
    with pytest.raises(ValueError, match=r"loss_fn must return one number \(a scalar tensor\), got \(8,\)"):
        detect_symmetries(model, [(x, y)], lambda out, t: torch.nn.functional.cross_entropy(out, t, reduction="none"))
    with pytest.raises(ValueError, match=r"batches\[1\] holds no example"):
        detect_symmetries(model, [(x, y), (x[:0], y[:0])], ce)
    for tolerance in (-1e-3, float("nan"), 0):
        with pytest.raises(ValueError, match="tolerance=.*must be a finite number > 0"):
            detect_symmetries(model, [(x, y)], ce, tolerance=tolerance)
    assert sum(g.kind == "rescale" for g in detect_symmetries(model, [(x, y)], ce)) == 6  # one per hidden ReLU
