"""Order parameter c* against sigma_W: finite-width random networks against mean-field theory.

"Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information Propagation", Eq. 8:
c^{l+1} = E_u tanh^2(sigma_W sqrt(c^l) u), transition at sigma_W = 1 (c* = 0 below, > 0 above).
Random (untrained) equivariant trunks of width N are run from c^0 = 1; the measured c^l,
averaged over the last layers, inputs and networks, is set against c*(sigma_W) by quadrature.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from goldstone.core.config import param
from goldstone.core.memory import FLOAT32, FLOAT64, ROW
from goldstone.core.observable import measure
from goldstone.lab.registry import experiment
from goldstone.lab.run import RunContext
from goldstone.core.errors import ConfigError
from goldstone.models import DeepMLP
from goldstone.models.group_config import GROUPS, GroupConfig
from goldstone.observables import OrderParameter
from goldstone.theory import SIGMA_W_CRITICAL, fixed_point, fixed_point_expansion, iterate_c_map


NEAR_CRITICAL = 1.15
"""The near-critical expansion of c* is drawn for 1 <= sigma_W <= this (it is a small-(sigma_W - 1) series)."""


@dataclasses.dataclass
class OrderParameterConfig(GroupConfig):
    group: str = param("u1", "symmetry of the layers", choices=GROUPS)
    width: int = param(1024, "real width N", ge=2)
    depth: int = param(50, "layers", ge=2)
    sigma_min: float = param(0.5, "smallest sigma_W", gt=0)
    sigma_max: float = param(3.0, "largest sigma_W", gt=0)
    num_sigma: int = param(11, "sigma_W values, evenly spaced", ge=1)
    networks: int = param(2, "random networks per sigma_W", ge=1)
    inputs: int = param(8, "random inputs per network", ge=1)
    tail: int = param(20, "last layers averaged for c*", ge=1)

    def validate(self) -> None:
        super().validate()
        if self.tail > self.depth:
            raise ConfigError(f"key 'tail'={self.tail} exceeds key 'depth'={self.depth}")
        if self.sigma_max < self.sigma_min:
            raise ConfigError(f"key 'sigma_max'={self.sigma_max} is below key 'sigma_min'={self.sigma_min}")

    def memory(self) -> dict[str, int]:
        """Bytes by term (`goldstone.core.memory`): one random trunk of L N x N layers (built in float32,
        measured in float64), the inputs' states at every layer, c for every sigma_W, network and layer."""
        return {"one trunk's weights (keys width, depth)": self.depth * self.width ** 2 * (FLOAT32 + FLOAT64),
                "the inputs' states (keys inputs, width, depth)": 2 * self.inputs * self.width * self.depth * FLOAT64,
                "c per layer (keys num_sigma, networks, depth)": self.num_sigma * self.networks * self.depth * ROW}


def simulate(cfg: OrderParameterConfig, sigma_w: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """c^l for l = 1..depth of one random trunk, averaged over `cfg.inputs` inputs with c^0 = 1."""
    torch.manual_seed(int(torch.randint(2**62, (), generator=generator)))
    model = DeepMLP(cfg.width, 1, cfg.group, cfg.k, cfg.width, cfg.depth, sigma_w).to(device, torch.float64)
    x0 = torch.randn(cfg.inputs, cfg.width, generator=generator, dtype=torch.float64).to(device) / cfg.block ** 0.5
    (result,) = measure(model, [OrderParameter(cfg.block)], x0, forward=model.trunk)
    return result.c


@experiment("order_parameter", OrderParameterConfig,
            "c* against sigma_W: random finite-width trunks vs mean-field quadrature")
def order_parameter(ctx: RunContext) -> None:
    cfg: OrderParameterConfig = ctx.config
    sigmas = np.linspace(cfg.sigma_min, cfg.sigma_max, cfg.num_sigma)
    generator = torch.Generator().manual_seed(ctx.seed)
    c = torch.stack([torch.stack([simulate(cfg, float(sigmas[i]), generator, ctx.device) for _ in range(cfg.networks)])
                     for i in ctx.steps(0, len(sigmas), "order parameter: random networks", "sigma_W values")]).cpu()  # (sigma, network, layer)
    for i, sigma in enumerate(sigmas):
        frame = pd.DataFrame({"observable": "order_parameter", "metric": "c",
                              "sigma_index": i, "network": np.repeat(np.arange(cfg.networks), cfg.depth),
                              "layer": np.tile(np.arange(cfg.depth), cfg.networks), "value": c[i].reshape(-1).numpy()})
        frame.insert(0, "step", 0)
        ctx.log_frame(frame)
    tail = c[:, :, -cfg.tail:].mean(-1)  # (sigma, network)
    theory = np.asarray(fixed_point(sigmas, cfg.block), dtype=float)
    table = pd.DataFrame({"sigma_w": sigmas, "c_star_theory": theory,
                          "c_star_expansion": np.where((sigmas >= SIGMA_W_CRITICAL) & (sigmas <= NEAR_CRITICAL),
                                                       np.asarray(fixed_point_expansion(sigmas, cfg.block), float), np.nan),
                          "c_simulated": tail.mean(1).numpy(), "c_simulated_std": tail.std(1, unbiased=False).numpy()})
    table["relative_error"] = np.where(theory > 0, (table.c_simulated - theory) / np.where(theory > 0, theory, 1), np.nan)
    ctx.table("c_star", table, f"Mean-field c* (quadrature) against random width-{cfg.width} networks "
                               f"(mean over the last {cfg.tail} of {cfg.depth} layers, {cfg.inputs} inputs, "
                               f"{cfg.networks} networks).")
    broken = table[table.c_star_theory > 0.05]
    ctx.headline("max_relative_error_broken_phase", float(broken.relative_error.abs().max()) if len(broken) else np.nan)
    ctx.save_arrays("c", {"c": c, "sigma_w": torch.tensor(sigmas)})
    draw(ctx, cfg, sigmas, c, table)


def draw(ctx: RunContext, cfg: OrderParameterConfig, sigmas: np.ndarray, c: torch.Tensor, table: pd.DataFrame) -> None:
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    fine = np.linspace(cfg.sigma_min, cfg.sigma_max, 200)
    ax1.plot(fine, fixed_point(fine, cfg.block), "k-", label=f"mean-field c* (quadrature), k = {cfg.block}")
    near = fine[(fine >= SIGMA_W_CRITICAL) & (fine <= NEAR_CRITICAL)]
    if len(near):
        ax1.plot(near, fixed_point_expansion(near, cfg.block), "k:", lw=2,
                 label=f"near-critical expansion (σ_W ≤ {NEAR_CRITICAL})")
    ax1.errorbar(table.sigma_w, table.c_simulated, yerr=table.c_simulated_std, fmt="o", color="C1",
                 label=f"simulation, N={cfg.width}")
    ax1.axvline(SIGMA_W_CRITICAL, color="grey", ls="--", label=f"critical σ_W = {SIGMA_W_CRITICAL:g}")
    ax1.set(xlabel="weight scale σ_W", ylabel="order parameter c* (mean squared block norm)", ylim=(-0.02, 1.0))
    ax1.legend(fontsize=8, loc="lower right")
    for i in np.linspace(0, len(sigmas) - 1, min(4, len(sigmas))).astype(int):
        line, = ax2.plot(np.arange(1, cfg.depth + 1), c[i].mean(0), label=f"σ_W = {sigmas[i]:.2f}")
        ax2.plot(np.arange(cfg.depth + 1), iterate_c_map(1.0, sigmas[i], cfg.depth, cfg.block), ":", color=line.get_color())
    ax2.set(xlabel="layer l", ylabel="$c^l$ (mean squared block norm)", yscale="log")
    ax2.legend(fontsize=8, title="solid: simulation\ndotted: mean-field c-map", title_fontsize=8,
               loc="center left", bbox_to_anchor=(1.02, 0.5))
    ctx.figure("order_parameter", fig, f"The order parameter vanishes below sigma_W = 1 and grows above it: "
                                       f"{cfg.group} networks of width {cfg.width} against mean-field theory.")
