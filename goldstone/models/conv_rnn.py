"""A U(1)-equivariant 2-D convolutional RNN: complex channels on a periodic lattice.

"Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information Propagation" (Appendix
D.3) reports long-lived vortices in the phase of such a network trained on the copy task; the
authors give no code, so the update is our documented choice (`docs/recurrent_goldstone.md`):

    z_t = phi(K * z_{t-1} + E x_t)

z_t: C complex channels on an H x W torus; K * z a complex convolution (circular padding),
i.e. the real kernel [[A, B], [-B, A]] on (Re z, Im z), which commutes with z -> e^{i alpha} z;
phi the radial tanh of every complex entry; E a general linear map from the input to the field
without bias, so a zero input (the copy task's blank) keeps the recurrence symmetric. With
`input_grid` = G, E writes a G x G field of each channel that periodic bilinear interpolation
spreads over the lattice (smooth on the scale size / G); without, a value into every site.
`group="generic"` gives a dense real kernel on the 2C real channels at the same gain.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from goldstone.core.errors import ConfigError
from goldstone.models.equivariant import radial_tanh, u1_matrix

CONV_GROUPS = ("u1", "generic")
CONV_INITS = ("random", "identity")


class ConvRNN(nn.Module):
    """Batch-first: (B, T, input_size) -> states (B, T, 2C, H, W) and the last state.

    A state holds the real parts of the C channels, then their imaginary parts (k-major with
    k = 2, n = C H W). Kernel weights ~ N(0, sigma_W^2 / (2 C kernel_size^2)), the fan-in of a real
    output, as `U1Linear` scales; `init="identity"` adds the identity at the centre tap (each site
    keeps its own z, plus small random couplings: smooth fields, as in the published re-implementation
    of the paper's conv RNN), `init="random"` does not.
    """

    def __init__(self, input_size: int, channels: int = 4, size: int = 16, kernel_size: int = 3,
                 group: str = "u1", sigma_w: float = 1.0, init: str = "random", input_grid: int | None = None):
        super().__init__()
        if group not in CONV_GROUPS:
            raise ConfigError(f"group must be one of {', '.join(CONV_GROUPS)} for a ConvRNN, got {group!r}")
        if init not in CONV_INITS:
            raise ConfigError(f"init must be one of {', '.join(CONV_INITS)}, got {init!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be a positive odd number, got {kernel_size}")
        if input_grid is not None and not 1 <= input_grid <= size:
            raise ConfigError(f"input_grid must lie in [1, size={size}], got {input_grid}")
        if size < kernel_size:
            raise ConfigError(f"lattice size {size} is smaller than kernel_size {kernel_size}")
        self.channels, self.size, self.kernel_size = channels, size, kernel_size
        self.group, self.sigma_w, self.init = group, sigma_w, init
        shape = (channels, channels, kernel_size, kernel_size)
        if group == "u1":
            self.kernel_re, self.kernel_im = nn.Parameter(torch.empty(shape)), nn.Parameter(torch.empty(shape))
        else:
            self.kernel_real = nn.Parameter(torch.empty(2 * channels, 2 * channels, kernel_size, kernel_size))
        grid = input_grid or size
        self.input = nn.Linear(input_size, 2 * channels * grid * grid, bias=False)
        self.register_buffer("spread", None if input_grid is None else periodic_interpolation(grid, size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std = self.sigma_w / math.sqrt(2 * self.channels * self.kernel_size ** 2)
        for weight in (self.kernel_re, self.kernel_im) if self.group == "u1" else (self.kernel_real,):
            nn.init.normal_(weight, std=std)
        if self.init == "identity":
            real = self.kernel_re if self.group == "u1" else self.kernel_real
            centre = self.kernel_size // 2
            with torch.no_grad():
                real[:, :, centre, centre] += torch.eye(real.shape[0])

    def kernel(self) -> torch.Tensor:
        """The real (2C, 2C, k, k) convolution kernel; for U(1) [[A, B], [-B, A]] over channels."""
        if self.group != "u1":
            return self.kernel_real
        return u1_matrix(self.kernel_re.permute(2, 3, 0, 1), self.kernel_im.permute(2, 3, 0, 1)).permute(2, 3, 0, 1)

    def step(self, z: torch.Tensor, drive: torch.Tensor, kernel: torch.Tensor | None = None) -> torch.Tensor:
        """z_t from z_{t-1} (B, 2C, H, W) and the input drive E x_t of the same shape."""
        kernel = self.kernel() if kernel is None else kernel
        pad = kernel.shape[-1] // 2
        pre = F.conv2d(F.pad(z, (pad, pad, pad, pad), mode="circular"), kernel) + drive
        return radial_tanh(pre.flatten(1), 2).view_as(z)

    def blank_step(self, h: torch.Tensor) -> torch.Tensor:
        """One update of flat states (B, 2 C H W) under the zero (blank) input."""
        z = h.view(-1, 2 * self.channels, self.size, self.size)
        return self.step(z, torch.zeros_like(z)).flatten(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, steps = x.shape[:2]
        drives = self.input(x).unflatten(-1, (2 * self.channels, -1))  # one GEMM for all steps
        if self.spread is not None:
            drives = drives @ self.spread.T
        drives = drives.view(batch, steps, 2 * self.channels, self.size, self.size)
        kernel = self.kernel()
        z = x.new_zeros(batch, 2 * self.channels, self.size, self.size)
        states = []
        for drive in drives.unbind(1):  # unbind: one gradient for all steps (indexing drives[:, t] zero-fills
            z = self.step(z, drive, kernel)  # a whole copy of drives per step in the backward pass)
            states.append(z)
        return torch.stack(states, 1), z


def periodic_interpolation(grid: int, size: int) -> torch.Tensor:
    """The (size^2, grid^2) matrix of bilinear interpolation from a grid x grid torus to a
    size x size one: sample y sits at coarse coordinate u = (y + 1/2) grid / size - 1/2 between
    cells floor(u) and floor(u) + 1 (mod grid), weights 1 - frac(u) and frac(u); 2-D is the
    Kronecker product of the two axes."""
    u = (torch.arange(size, dtype=torch.float64) + 0.5) * grid / size - 0.5
    low = u.floor()
    axis = torch.zeros(size, grid, dtype=torch.float64)
    rows = torch.arange(size)
    axis.index_put_((rows, low.long() % grid), 1 - (u - low), accumulate=True)
    axis.index_put_((rows, (low.long() + 1) % grid), u - low, accumulate=True)
    return torch.kron(axis, axis).float()


def phase_field(states: torch.Tensor) -> torch.Tensor:
    """The complex field (..., C, H, W) of `ConvRNN` states (..., 2C, H, W)."""
    real, imag = states.unflatten(-3, (2, -1)).unbind(-4)
    return torch.complex(real, imag)
