"""MPS adaptation: parameter count, factored forward = dense update, initial zero update, caps."""

import math

import pytest
import torch
from torch import nn

from goldstone.core.errors import ConfigError
from goldstone.models.mps_adapter import (MPSLinear, add_mps_adapters, default_split, mps_parameter_count,
                                          rank_matching_lora)
from goldstone.observables.entanglement import entanglement_profile


def test_parameter_count_matches_the_published_example():
    # d_out = d_in = 4096, r = 256, chi = 32, d1 = d2 = 64 (research notes: 1,574,912 against LoRA's 2,097,152)
    assert mps_parameter_count(4096, 4096, 256, 32, 64) == 1_574_912


def test_rank_matching_lora_is_the_nearest_count():
    r = rank_matching_lora(8, 384, 384, 4, 24)
    counts = {q: abs(mps_parameter_count(384, 384, q, 4, 24) - 8 * 768) for q in range(1, 40)}
    assert r == min(counts, key=counts.get) == 13


def test_default_split_is_near_the_square_root():
    assert default_split(384) == 24 and default_split(64) == 8 and default_split(7) == 7


def test_adapter_starts_at_zero_and_its_forward_is_the_dense_update():
    torch.manual_seed(0)
    layer = MPSLinear(nn.Linear(24, 12).double(), rank=3, chi=2, alpha=6.0, split=4)
    x = torch.randn(5, 7, 24, dtype=torch.float64)
    assert torch.equal(layer(x), layer.base(x))  # B = 0
    with torch.no_grad():
        layer.up.normal_()
    dense = layer.base(x) + x @ layer.delta_weight().T
    assert torch.allclose(layer(x), dense, atol=1e-12)
    assert torch.allclose(layer.merged()(x), dense, atol=1e-12)
    a = layer.down().detach()
    assert abs(float(a.var()) - 1 / (3 * 24)) < 0.5 / (3 * 24)  # Var(A_MPS) near peft's Kaiming-uniform A


def test_update_obeys_the_rank_and_bond_caps():
    torch.manual_seed(1)
    layer = MPSLinear(nn.Linear(64, 32).double(), rank=4, chi=2, alpha=1.0, split=8)
    with torch.no_grad():
        layer.up.normal_()
    profile = entanglement_profile(layer.delta_weight())  # sites 2^5 | 2^6: centre cut 5, chi cut 5 + 3
    assert profile[4] <= math.log(4) + 1e-10
    assert profile[7] <= math.log(2) + 1e-10
    assert profile[7] > 0.1  # the cap binds, the cut is not trivially zero


def test_injection_freezes_the_base_and_trains_the_head():
    model = nn.Sequential()
    model.add_module("query", nn.Linear(16, 16))
    model.add_module("classifier", nn.Linear(16, 3))
    add_mps_adapters(model, ["query"], rank=2, chi=2, alpha=4.0, trainable=["classifier"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"query.first_core", "query.second_core", "query.up", "classifier.weight", "classifier.bias"}
    model(torch.randn(2, 16)).sum().backward()
    assert model.query.up.grad is not None and model.query.base.weight.grad is None


def test_bad_split_and_missing_targets_are_config_errors():
    with pytest.raises(ConfigError, match="split"):
        MPSLinear(nn.Linear(10, 4), rank=2, chi=2, alpha=1.0, split=3)
    with pytest.raises(ConfigError, match="no nn.Linear"):
        add_mps_adapters(nn.Sequential(nn.Linear(4, 4)), ["query"], 2, 2, 1.0)
