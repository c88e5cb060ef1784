"""Find the translation, scale and rescale symmetries of any `nn.Module`: propose candidate
groups from the model's structure, then keep those that hold numerically.

Proposals ("Symmetry and Broken Conservation Laws in Deep Learning Dynamics", Kunin et al. 2021,
whose code lists layers by hand; here they are found):

- a *channel producer* (a Linear/Conv output channel with its bias, a BatchNorm/LayerNorm affine
  channel, an embedding column) whose output reaches, through positively homogeneous
  channel-wise ops only (ReLU, leaky ReLU, dropout, pooling, flatten),
  - train-mode BatchNorm only: **scale**, one group per channel;
  - one LayerNorm over exactly its channels: **scale**, the whole producer as one group;
  - linear consumers only (Linear, Conv, self-attention's input projection): **rescale**, channel
    j against the consumers' input columns j;
  - the model's output with no nonlinearity in between (a Linear head): **translation**, one
    group per input column plus the bias (it holds for softmax cross-entropy; the check decides);
- self-attention (`nn.MultiheadAttention`, or the Q/K/V/O projections of a Hugging Face model
  the adapters know): **rescale** of query dimension j against key dimension j, and of value
  dimension j against output-projection column j (the diagonal of attention's GL(d_head)).

Proposals come from a `torch.fx` trace; a model fx cannot trace falls back to module order
(consecutive Linear pairs, Linear followed by BatchNorm, the last Linear as head) plus the
attention rule, and says so. Each candidate family is then checked on the batches: the loss must
not change under a finite transformation of all its groups at once (random amounts per group, the
same dropout masks, buffers copied), and every group must satisfy <g, X_A> = 0; the larger
violation is its `quality`. Parameters used twice (tied weights) or frozen inside a group, and
eval-mode BatchNorm, are flagged instead of grouped.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from goldstone.core.errors import GoldstoneError
from goldstone.theory.noether.families import ChargeMap, Family, Member, SymmetryGroup

LINEAR = (nn.Linear,)
CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
BATCH_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
HOMOGENEOUS_MODULES = (nn.ReLU, nn.LeakyReLU, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity, nn.MaxPool1d,
                       nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d,
                       nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
HOMOGENEOUS_FUNCTIONS = {F.relu, torch.relu, F.leaky_relu, F.dropout, F.max_pool1d, F.max_pool2d, F.avg_pool1d,
                         F.avg_pool2d, F.adaptive_avg_pool2d}
HOMOGENEOUS_METHODS = {"relu", "contiguous"}
RESHAPES = {"flatten", "view", "reshape"}


@dataclasses.dataclass
class Candidate:
    family: Family
    violation: float = math.nan


class Symmetries(list):
    """The accepted `SymmetryGroup`s (a list), with the `rejected` candidate families and their
    violations, the `notes` on what was flagged, and the proposal `method` ("fx" or the fallback)."""

    def __init__(self, groups: Iterable[SymmetryGroup], rejected: list[Candidate], notes: list[str], method: str):
        super().__init__(groups)
        self.rejected, self.notes, self.method = rejected, notes, method

    def families(self) -> list[Family]:
        return list({id(g.family): g.family for g in self}.values())

    def to_frame(self, step: int | None = None) -> pd.DataFrame:
        """Tidy rows, as every result gives: one per group, ``observable="symmetries"``,
        ``metric="quality"`` (the measured violation), with the group's name and kind."""
        frame = pd.DataFrame({"observable": "symmetries", "metric": "quality", "group": [g.name for g in self],
                              "kind": [g.kind for g in self], "value": [g.quality for g in self]})
        if step is not None:
            frame.insert(0, "step", step)
        return frame


# -- structural proposals -------------------------------------------------------------------

@dataclasses.dataclass
class _Path:
    """Where a producer's channels end: terminals (kind, module name, block) and reasons for breaks."""
    terminals: list[tuple[str, str, int]] = dataclasses.field(default_factory=list)
    breaks: list[str] = dataclasses.field(default_factory=list)
    nonlinear: bool = False


def _producer_members(name: str, module: nn.Module) -> tuple[list[Member], int] | None:
    """Per-channel members of a channel producer and its channel count, or None."""
    if isinstance(module, LINEAR + CONV):
        if isinstance(module, CONV) and module.groups != 1:
            return None
        members = [Member(f"{name}.weight", 0)] + ([Member(f"{name}.bias", 0)] if module.bias is not None else [])
        return members, module.weight.shape[0]
    if isinstance(module, BATCH_NORM + (nn.LayerNorm,)) and getattr(module, "weight", None) is not None:
        if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) != 1:
            return None
        members = [Member(f"{name}.weight", 0)] + ([Member(f"{name}.bias", 0)] if module.bias is not None else [])
        return members, module.weight.shape[0]
    if isinstance(module, nn.Embedding):
        return [Member(f"{name}.weight", 1)], module.weight.shape[1]
    return None


def _shape(node: Any) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _follow(node: Any, modules: Mapping[str, nn.Module], channel_axis: int, block: int, path: _Path) -> None:
    """Walk the users of `node` through channel-wise homogeneous ops, recording terminals."""
    for user in node.users:
        target = user.target
        module = modules.get(target) if user.op == "call_module" else None
        if user.op == "output":
            path.terminals.append(("output", "", block))
        elif module is not None and isinstance(module, HOMOGENEOUS_MODULES) or (
                user.op == "call_function" and target in HOMOGENEOUS_FUNCTIONS) or (
                user.op == "call_method" and target in HOMOGENEOUS_METHODS):
            if not isinstance(module, (nn.Identity, nn.Dropout)) and not (user.op == "call_function"
                                                                         and target is F.dropout):
                path.nonlinear = True
            _follow(user, modules, channel_axis, block, path)
        elif (module is not None and isinstance(module, nn.Flatten)) or (
                user.op == "call_function" and target is torch.flatten) or (
                user.op == "call_method" and target in RESHAPES):
            before, after = _shape(node), _shape(user)
            if before is None or after is None or len(after) != 2 or after[0] != before[0]:
                path.breaks.append(f"reshape to {after}")
            elif channel_axis == 1 or len(before) == 2:
                _follow(user, modules, 1, block * math.prod(before[2:]), path)
            else:
                path.breaks.append(f"reshape to {after} with channels on axis {channel_axis}")
        elif module is not None and isinstance(module, LINEAR) and user.args[0] is node:
            path.terminals.append(("consumer", target, block))
        elif module is not None and isinstance(module, CONV) and user.args[0] is node and module.groups == 1:
            path.terminals.append(("consumer", target, block) if block == 1 and channel_axis == 1
                                  else ("break", f"{target} reads a reshaped channel", block))
        elif module is not None and isinstance(module, nn.MultiheadAttention) and module._qkv_same_embed_dim \
                and all(a is node for a in user.args[:3]):
            path.terminals.append(("attention_input", target, block))
        elif module is not None and isinstance(module, BATCH_NORM) and user.args[0] is node:
            path.terminals.append(("batch_norm" if module.training else "eval_batch_norm", target, block))
        elif module is not None and isinstance(module, nn.LayerNorm) and user.args[0] is node:
            path.terminals.append(("layer_norm", target, block))
        elif user.op == "call_function" and target is operator.getitem:
            path.breaks.append("indexing")
        else:
            what = type(module).__name__ if module is not None else getattr(target, "__name__", str(target))
            path.breaks.append(what)


def _family_from_path(name: str, module: nn.Module, members: list[Member], channels: int, path: _Path,
                      modules: Mapping[str, nn.Module], notes: list[str]) -> list[Family]:
    kinds = {t[0] for t in path.terminals}
    if path.breaks or not path.terminals:
        if path.breaks and isinstance(module, LINEAR + CONV):
            notes.append(f"{name}: its output passes through {', '.join(sorted(set(path.breaks)))}: no scale or "
                         "rescale symmetry")
        return []
    if kinds == {"batch_norm"} and all(t[2] == 1 for t in path.terminals):
        note = f"{name}.bias feeds BatchNorm: its gradient is zero (it only decays)" \
            if any(m.parameter.endswith(".bias") for m in members) and isinstance(module, LINEAR + CONV) else ""
        return [Family("scale", f"{name} → {path.terminals[0][1]}", tuple(members), channels, note)]
    if kinds == {"eval_batch_norm"}:
        notes.append(f"{name} feeds eval-mode BatchNorm ({path.terminals[0][1]}): running statistics break the "
                     "scale symmetry; call model.train() to detect it")
        return []
    if kinds == {"layer_norm"} and len(path.terminals) == 1 and path.terminals[0][2] == 1:
        whole = tuple(Member(m.parameter, m.axis, m.sign, channels) for m in members)
        return [Family("scale", f"{name} → {path.terminals[0][1]}", whole, 1)]
    if kinds <= {"consumer", "attention_input"}:
        consumers = []
        for _, target, block in path.terminals:
            weight = "in_proj_weight" if isinstance(modules[target], nn.MultiheadAttention) else "weight"
            consumers.append(Member(f"{target}.{weight}", 1, -1, block))
        names = ", ".join(dict.fromkeys(t[1] for t in path.terminals))
        return [Family("rescale", f"{name} ↔ {names}", tuple(members) + tuple(consumers), channels)]
    if kinds == {"output"} and not path.nonlinear and isinstance(module, LINEAR):
        head = [Family("translation", f"{name} columns", (Member(f"{name}.weight", 1),), module.in_features)]
        if module.bias is not None:
            head.append(Family("translation", f"{name}.bias", (Member(f"{name}.bias", 0, 1, module.out_features),), 1))
        return head
    return []


def _attention_families(name: str, module: nn.MultiheadAttention) -> list[Family]:
    d = module.embed_dim
    bias = module.in_proj_bias is not None
    w, b = f"{name}.in_proj_weight", f"{name}.in_proj_bias"
    qk = [Member(w, 0), Member(w, 0, -1, 1, d)] + ([Member(b, 0), Member(b, 0, -1, 1, d)] if bias else [])
    vo = [Member(w, 0, 1, 1, 2 * d), Member(f"{name}.out_proj.weight", 1, -1)] + ([Member(b, 0, 1, 1, 2 * d)]
                                                                                  if bias else [])
    return [Family("rescale", f"{name} query ↔ key", tuple(qk), d),
            Family("rescale", f"{name} value ↔ output", tuple(vo), d)]


def _hf_attention_families(model: nn.Module) -> list[Family]:
    """Query/key and value/output rescale families of a Hugging Face model the adapters know."""
    from goldstone.models.adapters import adapter_for, num_layers, submodule

    try:
        adapter = adapter_for(model)
    except GoldstoneError:
        return []
    if adapter.fused_qkv is not None:
        return []
    owner = {id(m): n for n, m in model.named_modules()}
    families = []
    for layer in range(num_layers(model)):
        q, k, v, o = (submodule(model, layer, role) for role in ("query", "key", "value", "output_projection"))
        if not all(isinstance(m, nn.Linear) for m in (q, k, v, o)):
            continue
        if q.out_features == k.out_features:
            members = [Member(f"{owner[id(q)]}.weight", 0), Member(f"{owner[id(k)]}.weight", 0, -1)]
            members += [Member(f"{owner[id(m)]}.bias", 0, s) for m, s in ((q, 1), (k, -1)) if m.bias is not None]
            families.append(Family("rescale", f"layer {layer} query ↔ key", tuple(members), q.out_features))
        if v.out_features == o.in_features:
            members = [Member(f"{owner[id(v)]}.weight", 0), Member(f"{owner[id(o)]}.weight", 1, -1)]
            members += [Member(f"{owner[id(v)]}.bias", 0)] if v.bias is not None else []
            families.append(Family("rescale", f"layer {layer} value ↔ output", tuple(members), v.out_features))
    return families


def propose_fx(model: nn.Module, example: Any, notes: list[str]) -> list[Family]:
    """Candidate families from a `torch.fx` trace of `model` (shapes propagated on `example`)."""
    from torch.fx import symbolic_trace
    from torch.fx.passes.shape_prop import ShapeProp

    traced = symbolic_trace(model)
    if torch.is_tensor(example):
        ShapeProp(traced).propagate(example)
    modules = dict(traced.named_modules())
    families: list[Family] = []
    for node in traced.graph.nodes:
        if node.op != "call_module":
            continue
        module = modules[node.target]
        if isinstance(module, nn.MultiheadAttention) and module._qkv_same_embed_dim:
            families += _attention_families(node.target, module)
            continue
        produced = _producer_members(node.target, module)
        if produced is None:
            continue
        members, channels = produced
        shape = _shape(node)
        channel_axis = 1 if isinstance(module, CONV + BATCH_NORM) else (len(shape) - 1 if shape else -1)
        path = _Path()
        _follow(node, modules, channel_axis if channel_axis >= 0 else 1, 1, path)
        families += _family_from_path(node.target, module, members, channels, path, modules, notes)
    return families


def propose_by_module_order(model: nn.Module) -> list[Family]:
    """Fallback candidates when fx cannot trace: consecutive Linear pairs with matching widths
    (rescale), Linear followed by BatchNorm (scale), the last Linear as a head (translation),
    plus the attention rule. Everything is checked numerically afterwards."""
    named = [(n, m) for n, m in model.named_modules() if isinstance(m, LINEAR + BATCH_NORM)]
    families = []
    for (a, ma), (b, mb) in zip(named, named[1:]):
        if isinstance(ma, LINEAR) and isinstance(mb, LINEAR) and ma.out_features == mb.in_features:
            members = _producer_members(a, ma)[0] + [Member(f"{b}.weight", 1, -1)]
            families.append(Family("rescale", f"{a} ↔ {b}", tuple(members), ma.out_features))
        if isinstance(ma, LINEAR) and isinstance(mb, BATCH_NORM) and ma.out_features == mb.num_features:
            families.append(Family("scale", f"{a} → {b}", tuple(_producer_members(a, ma)[0]), ma.out_features))
    linears = [(n, m) for n, m in named if isinstance(m, LINEAR)]
    if linears:
        name, head = linears[-1]
        families.append(Family("translation", f"{name} columns", (Member(f"{name}.weight", 1),), head.in_features))
        if head.bias is not None:
            families.append(Family("translation", f"{name}.bias", (Member(f"{name}.bias", 0, 1, head.out_features),),
                                   1))
    return _hf_attention_families(model) + families


# -- numerical verification -----------------------------------------------------------------

def _split(batch: Any) -> tuple[Any, Any]:
    return batch if isinstance(batch, tuple) else (batch, None)


def _call(model: nn.Module, params: Mapping[str, torch.Tensor], buffers: Mapping[str, torch.Tensor], inputs: Any) -> Any:
    state = {**params, **{k: v.clone() for k, v in buffers.items()}}
    if isinstance(inputs, Mapping):
        return functional_call(model, state, args=(), kwargs=dict(inputs))
    return functional_call(model, state, (inputs,))


def _loss(model, params, buffers, batch, loss_fn, seed: int) -> torch.Tensor:
    inputs, targets = _split(batch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        loss = loss_fn(_call(model, params, buffers, inputs), targets)
    if not torch.is_tensor(loss) or loss.numel() != 1:
        raise ValueError(f"loss_fn must return one number (a scalar tensor), got "
                         f"{tuple(loss.shape) if torch.is_tensor(loss) else type(loss).__name__}")
    if not torch.isfinite(loss.detach()).all():
        raise ValueError(f"loss_fn returned {float(loss.detach())} on a batch: a symmetry cannot be checked against a "
                         "non-finite loss")
    return loss.reshape(())


def _examples(inputs: Any) -> int | None:
    """The number of examples of a batch's inputs (None when it cannot tell)."""
    if torch.is_tensor(inputs):
        return inputs.shape[0] if inputs.dim() else None
    if isinstance(inputs, Mapping) and inputs:
        return _examples(next(iter(inputs.values())))
    return None


def _distinct(families: list[Family]) -> list[Family]:
    """Families in order, without repeats of the same groups proposed by two rules."""
    seen, out = set(), []
    for family in families:
        key = (family.kind, family.count, frozenset(family.members))
        if key not in seen:
            seen.add(key)
            out.append(family)
    return out


def _flag_shared(families: list[Family], model: nn.Module, notes: list[str]) -> list[Family]:
    """Drop families with a tied (used twice) or frozen parameter, saying why."""
    uses: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        uses.setdefault(id(p), []).append(name)
    params = dict(model.named_parameters(remove_duplicate=False))
    kept = []
    for family in families:
        tied = [p for p in family.parameters if len(uses[id(params[p])]) > 1]
        frozen = [p for p in family.parameters if not params[p].requires_grad]
        if tied:
            others = [n for n in uses[id(params[tied[0]])] if n != tied[0]]
            notes.append(f"{family.name} ({family.kind}): {tied[0]} is tied to {', '.join(others)}: the other use "
                         "breaks the symmetry; not grouped")
        elif frozen:
            notes.append(f"{family.name} ({family.kind}): {frozen[0]} is frozen (requires_grad=False): only part of "
                         "the group trains, so the symmetry of what trains is broken; not grouped")
        else:
            kept.append(family)
    return kept


def verify(model: nn.Module, families: list[Family], batches: list[Any], loss_fn: Callable[[Any, Any], torch.Tensor],
           notes: list[str], tolerance: float = 1e-3, seed: int = 0) -> tuple[list[SymmetryGroup], list[Candidate]]:
    """Check each family on `batches` (see the module docstring); returns accepted groups and
    rejected families with their violation. Families with a parameter the loss does not use are
    dropped with a note in `notes`."""
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    shapes = {n: p.shape for n, p in params.items()}
    groups = [SymmetryGroup(f, j) for f in families for j in range(f.count)]
    charges = ChargeMap(groups, shapes, next(iter(params.values())).device) if groups else None
    cosine = torch.zeros(len(groups), dtype=torch.float64)
    invariance = torch.zeros(len(families), dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    unused: set[str] = set()
    for batch in batches:
        live = {n: p.clone().requires_grad_(p.is_floating_point()) for n, p in params.items()}
        loss = _loss(model, live, buffers, batch, loss_fn, seed)
        grads = dict(zip(live, torch.autograd.grad(loss, list(live.values()), allow_unused=True)))
        unused.update(n for n, g in grads.items() if g is None)
        grads = {n: g if g is not None else torch.zeros_like(params[n]) for n, g in grads.items()}
        cosine = torch.maximum(cosine, _orthogonality(groups, charges, params, grads))
        with torch.no_grad():
            reference = float(loss)
            for i, family in enumerate(families):
                amounts = (torch.rand(family.count, generator=generator, dtype=torch.float64) * 0.6 - 0.3
                           if family.kind == "translation"
                           else torch.exp(torch.rand(family.count, generator=generator, dtype=torch.float64) - 0.5))
                moved = {**params, **family.transform(params, amounts)}
                changed = float(_loss(model, moved, buffers, batch, loss_fn, seed))
                invariance[i] = max(float(invariance[i]), abs(changed - reference) / max(abs(reference), 1e-12))
    accepted, rejected, start = [], [], 0
    for i, family in enumerate(families):
        block = cosine[start:start + family.count]
        start += family.count
        worst = max(float(block.max()), float(invariance[i]))
        idle = [p for p in family.parameters if p in unused]
        if idle:
            notes.append(f"{family.name} ({family.kind}): {idle[0]} does not reach the loss, so any transformation "
                         "of it is trivially a symmetry; not grouped")
        elif worst <= tolerance:
            accepted += [SymmetryGroup(family, j, max(float(block[j]), float(invariance[i])))
                         for j in range(family.count)]
        else:
            rejected.append(Candidate(family, worst))
    return accepted, rejected


def _orthogonality(groups, charges, params, grads) -> torch.Tensor:
    """|<g, X_A>| / (|g_A| |X_A|) per group (0 where the gradient vanishes on the group)."""
    quadratic = torch.tensor([g.kind != "translation" for g in groups])
    inner_quad = charges.reduce(lambda n: grads[n] * params[n])
    inner_lin = charges.reduce(lambda n: grads[n])
    g_norm = charges.reduce(lambda n: grads[n] ** 2, signed=False).sqrt()
    x_quad = charges.reduce(lambda n: params[n] ** 2, signed=False).sqrt()
    x_lin = charges.reduce(lambda n: torch.ones_like(params[n]), signed=False).sqrt()
    inner = torch.where(quadratic, inner_quad, inner_lin).abs()
    norm = g_norm * torch.where(quadratic, x_quad, x_lin)
    return torch.where(norm > 0, inner / norm.clamp_min(1e-300), torch.zeros_like(norm)).cpu()


def detect_symmetries(model: nn.Module, batches: Any, loss_fn: Callable[[Any, Any], torch.Tensor],
                      tolerance: float = 1e-3, seed: int = 0) -> Symmetries:
    """Translation, scale and rescale groups of `model` (see the module docstring).

    `batches`: one batch or a list of them, each inputs or ``(inputs, targets)`` (inputs a tensor,
    or a mapping of keyword arguments as for Hugging Face models); `loss_fn(outputs, targets)` the
    training loss. Detection runs in the model's current mode: call ``model.train()`` first (BatchNorm's
    scale symmetry needs batch statistics). `tolerance`: the largest violation accepted.
    """
    if torch.is_tensor(batches) or isinstance(batches, (tuple, Mapping)):
        batches = [batches]
    batches = list(batches)
    if not batches:
        raise GoldstoneError("detect_symmetries: give at least one batch")
    if not (isinstance(tolerance, (int, float)) and tolerance > 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance={tolerance!r}: the largest violation accepted must be a finite number > 0")
    empty = [i for i, b in enumerate(batches) if _examples(_split(b)[0]) == 0]
    if empty:
        raise ValueError(f"batches[{empty[0]}] holds no example")
    notes: list[str] = []
    try:
        families, method = propose_fx(model, _split(batches[0])[0], notes), "fx"
    except Exception as err:  # noqa: BLE001 - any tracing failure means: fall back
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        notes.append(f"torch.fx cannot trace {type(model).__name__} ({reason[:120]}); candidates come from module "
                     "order and attention roles instead, each checked numerically")
        notes = [n for n in notes if n.startswith("torch.fx")]
        families, method = propose_by_module_order(model), "module order"
    families = _flag_shared(_distinct(families), model, notes)
    accepted, rejected = verify(model, families, batches, loss_fn, notes, tolerance, seed)
    if not accepted:
        notes.append(f"no symmetry of {type(model).__name__} holds within tolerance {tolerance:g}"
                     + (f" ({len(rejected)} candidates rejected)" if rejected else " (no candidates)"))
    return Symmetries(accepted, rejected, notes, method)
