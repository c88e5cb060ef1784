"""Hidden layers as (producer, consumer) pairs: the Linear/Conv whose output channel i is hidden
unit i, the elementwise ops after it (activation, BatchNorm, dropout, pooling, flatten), and the
Linear/Conv that reads it.

Found from a `torch.fx` trace; models fx cannot trace (most Hugging Face models) fall back to
module order, taking consecutive Linear layers whose widths chain, or, for a Hugging Face
transformer the adapters know, each block's MLP (mlp_in, mlp_out).
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from goldstone.core.errors import GoldstoneError

PRODUCERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.Softplus, nn.Identity,
               nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
               nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Hardtanh, nn.Mish)
ELEMENTWISE_FUNCTIONS = {F.relu, torch.relu, F.gelu, F.silu, torch.tanh, F.tanh, torch.sigmoid, F.leaky_relu,
                         F.dropout, torch.flatten, F.max_pool2d, F.avg_pool2d}
ELEMENTWISE_METHODS = {"relu", "tanh", "sigmoid", "flatten", "view", "reshape", "contiguous"}
ODD = (nn.Tanh, nn.Identity, nn.Hardtanh)
ODD_FUNCTIONS = {torch.tanh, F.tanh}


@dataclasses.dataclass(frozen=True)
class LayerPair:
    """Hidden layer `producer` -> `consumer` (module names), with the BatchNorm between them (if
    any), whether every op between is odd (tanh, identity: unit i and -unit i are equivalent),
    whether an activation sits between, and the consumer's columns per unit (spatial positions
    after a flatten)."""
    producer: str
    consumer: str
    norm: str | None = None
    odd: bool = False
    activation: str = ""
    block: int = 1

    @property
    def name(self) -> str:
        return f"{self.producer} → {self.consumer}"


def _module_of(node: Any, modules: dict[str, nn.Module]) -> nn.Module | None:
    return modules.get(node.target) if node.op == "call_module" else None


def _trace_pairs(model: nn.Module, example: Any) -> list[LayerPair]:
    from torch.fx import symbolic_trace
    from torch.fx.passes.shape_prop import ShapeProp

    traced = symbolic_trace(model)
    if torch.is_tensor(example):
        ShapeProp(traced).propagate(example)
    modules = dict(traced.named_modules())
    pairs = []
    for node in traced.graph.nodes:
        if not isinstance(_module_of(node, modules), PRODUCERS):
            continue
        current, norm, odd, activations, block = node, None, True, [], 1
        while len(current.users) == 1:
            user = next(iter(current.users))
            module = _module_of(user, modules)
            if isinstance(module, PRODUCERS):
                if user.args[0] is current:
                    pairs.append(LayerPair(node.target, user.target, norm, odd, ", ".join(activations), block))
                break
            if isinstance(module, NORMS) and norm is None:
                norm = user.target
            elif isinstance(module, ELEMENTWISE) or (user.op == "call_function" and user.target in
                                                     ELEMENTWISE_FUNCTIONS) or (user.op == "call_method" and
                                                                                user.target in ELEMENTWISE_METHODS):
                name = type(module).__name__ if module is not None else str(getattr(user.target, "__name__",
                                                                                    user.target))
                reshape = isinstance(module, nn.Flatten) or name in ("flatten", "view", "reshape")
                if reshape:
                    shape = current.meta.get("tensor_meta")
                    block *= int(torch.Size(shape.shape[2:]).numel()) if shape is not None else 1
                elif name not in ("Dropout", "Dropout1d", "Dropout2d", "dropout", "contiguous", "Identity"):
                    activations.append(name)
                    odd = odd and (isinstance(module, ODD) or user.target in ODD_FUNCTIONS or name == "tanh")
            elif user.op == "call_function" and user.target is operator.getitem:
                break
            else:
                break
            current = user
    return pairs


def _module_order_pairs(model: nn.Module) -> list[LayerPair]:
    try:
        from goldstone.models.adapters import adapter_for, num_layers, submodule

        adapter_for(model)
        owner = {id(m): n for n, m in model.named_modules()}
        return [LayerPair(owner[id(submodule(model, i, "mlp_in"))], owner[id(submodule(model, i, "mlp_out"))],
                          activation="(the model's MLP activation)") for i in range(num_layers(model))]
    except GoldstoneError:
        pass
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return [LayerPair(a, b) for (a, ma), (b, mb) in zip(linears, linears[1:]) if ma.out_features == mb.in_features]


def layer_pairs(model: nn.Module, example: Any = None) -> tuple[list[LayerPair], str]:
    """The hidden layers of `model` and how they were found ("fx" or "module order")."""
    try:
        pairs, method = _trace_pairs(model, example), "fx"
    except Exception:  # noqa: BLE001 - any tracing failure means: fall back
        pairs, method = _module_order_pairs(model), "module order"
    if not pairs:
        raise GoldstoneError(f"{type(model).__name__} has no pair of Linear/Conv layers with a hidden layer between "
                             "them (nothing to take a neuron census of)")
    return pairs, method
