"""Input-output Jacobian of an equivariant trunk x^0 -> x^L.

Protected direction: for a generator T of the group, equivariance gives exactly
J_{L<-0} (T x^0) = T x^L, so ``ratio = |J T x^0| / |T x^L| = 1`` and the gain along T x^0 is
|T x^L| / |T x^0|, of order one in the broken phase, however deep the network ("Spontaneous
Symmetry Breaking and Goldstone Modes for Deep Information Propagation"). A generic network has
no such direction. The full singular spectrum of J gives its top value and effective rank
exp(H(s / sum s)) (Roy & Vetterli).

Both observables need the model split into ``features(x) -> x^0`` and ``trunk(x^0) -> x^L``:
by default the model's own methods of these names (as in `DeepMLP`), or callables passed in.

The same holds through time: for a recurrence h -> F(h) that commutes with the group (an
equivariant RNN under the blank input), the Jacobian of t steps maps T h_0 exactly onto T h_t,
and `protected_direction` measures it for any step function.
"""

from __future__ import annotations

import copy
import dataclasses
import weakref
from collections.abc import Callable

import torch
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.observable import Observable, Probe
from goldstone.core.result import Result, dims
from goldstone.groups import act, generator_matrix

Split = Callable[[nn.Module], tuple[Callable, Callable]]


def default_split(model: nn.Module) -> tuple[Callable, Callable]:
    if not (hasattr(model, "features") and hasattr(model, "trunk")):
        raise GoldstoneError(f"{type(model).__name__} has no features()/trunk() methods: pass split=")
    return model.features, model.trunk


def protected_ratio(fn: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, t: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(|J T x0| / |T fn(x0)|, |T fn(x0)| / |T x0|) per row of `x0`, J the Jacobian of `fn` at x0,
    by one forward-mode Jacobian-vector product; NaN where a state is exactly zero (no direction)."""
    tangent = act(t, x0)
    out, pushed = torch.func.jvp(fn, (x0,), (tangent,))
    expected = act(t, out).norm(dim=-1)
    nonzero = lambda norm: norm.masked_fill(norm == 0, float("nan"))  # noqa: E731  (no direction: NaN)
    return pushed.norm(dim=-1) / nonzero(expected), expected / nonzero(tangent.norm(dim=-1))


def protected_direction(step: Callable[[torch.Tensor], torch.Tensor], h0: torch.Tensor, steps: int, k: int,
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(ratio, gain) per state of `h0` (B, N) after `steps` applications of `step` (see the module
    docstring), along T h_0 with T from `generator_matrix`: ratio 1 for an equivariant step."""
    t = generator_matrix(k, generator, dtype=h0.dtype).to(h0.device)

    def run(h: torch.Tensor) -> torch.Tensor:
        for _ in range(steps):
            h = step(h)
        return h

    return protected_ratio(run, h0, t)


class _TrunkObservable(Observable):
    def __init__(self, split: Split = default_split, dtype: torch.dtype = torch.float64):
        self.split, self.dtype = split, dtype
        self._shadow: tuple[weakref.ref, nn.Module] | None = None

    def _cast(self, model: nn.Module) -> nn.Module:
        """A copy of `model` in `dtype`, made once per model and refreshed with its current weights."""
        if self._shadow is None or self._shadow[0]() is not model:
            self._shadow = (weakref.ref(model), copy.deepcopy(model).to(self.dtype))
        shadow = self._shadow[1]
        with torch.no_grad():
            for target, source in zip(shadow.state_dict().values(), model.state_dict().values()):
                target.copy_(source)
        return shadow

    def _trunk(self, probe: Probe) -> tuple[torch.Tensor, Callable]:
        """x^0 and the trunk, evaluated on a copy of the model cast to `dtype`."""
        features, trunk = self.split(self._cast(probe.model))
        with torch.no_grad():
            x0 = features(probe.inputs.to(self.dtype).flatten(1))
        return x0, trunk


@dataclasses.dataclass
class ProtectedJacobianResult(Result):
    observable = "protected_jacobian"
    ratio: torch.Tensor = dims("sample")
    gain: torch.Tensor = dims("sample")
    max_deviation: float = 0.0


class ProtectedJacobian(_TrunkObservable):
    """Along a group generator T: ratio |J T x^0| / |T x^L| (exactly 1 for an equivariant trunk) and
    gain |T x^L| / |T x^0| per probe input, J = dx^L/dx^0 ("Spontaneous Symmetry Breaking and
    Goldstone Modes for Deep Information Propagation"). `k`: the block size of T; `split`: how the
    model divides into ``features`` and ``trunk``."""

    name = "protected_jacobian"
    summary = "|J T x^0| / |T x^L| (1 for equivariant nets) and the gain |T x^L| / |T x^0|"

    def __init__(self, k: int = 2, split: Split = default_split, dtype: torch.dtype = torch.float64, seed: int = 0):
        self.T = generator_matrix(k, torch.Generator().manual_seed(seed), dtype)
        super().__init__(split, dtype)
        self.add_state("_ratio", [], "cat")
        self.add_state("_gain", [], "cat")

    def update(self, probe: Probe) -> None:
        x0, trunk = self._trunk(probe)
        ratio, gain = protected_ratio(trunk, x0, self.T.to(x0.device))
        self._ratio.append(ratio.detach().cpu())
        self._gain.append(gain.detach().cpu())

    def compute(self) -> ProtectedJacobianResult:
        ratio = torch.cat(self._ratio).double().cpu()
        return ProtectedJacobianResult(ratio=ratio, gain=torch.cat(self._gain).double().cpu(),
                                       max_deviation=float((ratio - 1).abs().max()))



@dataclasses.dataclass
class JacobianSpectrumResult(Result):
    observable = "jacobian_spectrum"
    singular_values: torch.Tensor = dims("index")
    top: torch.Tensor = dims("sample")
    effective_rank: torch.Tensor = dims("sample")


class JacobianSpectrum(_TrunkObservable):
    """Singular values s of J = dx^L/dx^0 per probe input: the mean spectrum, the top value and the
    effective rank exp(H(s / sum s)) (Roy & Vetterli, "The effective rank")."""

    name = "jacobian_spectrum"
    summary = "singular spectrum of J = dx^L/dx^0: mean spectrum, top value, effective rank"

    def __init__(self, split: Split = default_split, dtype: torch.dtype = torch.float64):
        super().__init__(split, dtype)
        self.add_state("_s", [], "cat")
        self.add_state("_rank", [], "cat")

    def update(self, probe: Probe) -> None:
        x0, trunk = self._trunk(probe)
        jac = torch.func.vmap(torch.func.jacrev(lambda v: trunk(v.unsqueeze(0)).squeeze(0)))(x0)
        s = torch.linalg.svdvals(jac.detach())
        p = s / s.sum(-1, keepdim=True).clamp_min(torch.finfo(s.dtype).tiny)
        entropy = -(p * torch.log(p.clamp_min(torch.finfo(s.dtype).tiny))).sum(-1)
        self._s.append(s.cpu())
        self._rank.append(entropy.exp().cpu())

    def compute(self) -> JacobianSpectrumResult:
        s = torch.cat(self._s).double().cpu()
        return JacobianSpectrumResult(singular_values=s.mean(0), top=s[:, 0],
                                      effective_rank=torch.cat(self._rank).double().cpu())

