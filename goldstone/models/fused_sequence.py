"""The equivariant recurrences over a whole sequence, each as one autograd node.

For the cells of `goldstone.models.recurrent` a CPU step at width 64 is bound by the fixed cost of
each tensor op and autograd node, as for the deep MLP (`radial_stack`): running all T steps in one
`torch.autograd.Function` with a hand-written backward takes a fraction of the ops autograd
records (`benchmarks/bench_recurrent.py`). phi is the radial tanh, M the recurrent layer's row
matrix, and its Jacobian J_phi = s I + q p p^T at the pre-activation p (s = tanh|p| / |p|,
q = (1 - tanh^2|p| - s) / |p|^2), so dp = s dy + q p (p . dy).

Simple cell, h' = phi(rows(h) M^T + U x_t): dp from dh', dM += rows(dp)^T rows(h), dh = rows(dp) M.

Gated cell, on components h (B, k, n):

    a = |h| (block norms, (B, n)),  (u, r) = sigmoid(a A^T + b + B x_t),
    c = phi(rows(r h) M^T + U x_t),  h' = h + u (c - h);

backward: dc = u dh', du = sum_d (c - h) dh', dh = (1 - u) dh'; dp from dc;
dM += rows(dp)^T rows(r h); d(r h) = rows(dp) M; dr = sum_d h d(r h), dh += r d(r h);
dg = (du, dr) g (1 - g); dA += dg^T a, db += sum dg; dh += (dg A / a) h.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from goldstone.models.radial_stack import radial_backward, radial_forward


class RadialSequence(torch.autograd.Function):
    """States (B, T, N) of the simple cell from the input drives U x_t (B, T, N) and h0 (B, N)."""

    @staticmethod
    def forward(ctx, drives: torch.Tensor, h0: torch.Tensor, layer: nn.Module, k: int,
                *parameters: torch.Tensor) -> torch.Tensor:
        tiny = torch.finfo(drives.dtype).tiny
        batch, steps, width = drives.shape
        (matrix,) = type(layer).row_matrices([layer])
        h, states, saved = h0, [], []
        for t in range(steps):
            pre = torch.mm(h.reshape(-1, matrix.shape[1]), matrix.t()).view(batch, -1).add_(drives[:, t])
            pre = pre.view(batch, k, -1)
            new, r2, tanh, scale = radial_forward(pre, tiny)
            saved.append((h, pre, r2, tanh, scale))
            h = new.view(batch, width)
            states.append(h)
        ctx.saved, ctx.layer, ctx.matrix = saved, layer, matrix
        return torch.stack(states, 1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_states: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        matrix, layer = ctx.matrix, ctx.layer
        d_drives = torch.empty_like(grad_states)
        d_matrix = torch.zeros_like(matrix)
        dh = torch.zeros_like(grad_states[:, 0])
        for t in reversed(range(grad_states.shape[1])):
            h, pre, r2, tanh, scale = ctx.saved[t]
            d_pre = radial_backward((dh + grad_states[:, t]).view_as(pre), pre, r2, tanh, scale)
            d_drives[:, t] = d_pre.view(len(pre), -1)
            rows = d_pre.view(-1, matrix.shape[0])
            d_matrix.addmm_(rows.t(), h.reshape(-1, matrix.shape[1]))
            dh = torch.mm(rows, matrix).view_as(dh)
        return (d_drives, dh, None, None, *type(layer).parameter_gradients([layer], [d_matrix]))


class GatedRadialSequence(torch.autograd.Function):
    """States (B, T, N) of the gated cell from the input drives U x_t (B, T, N), the gates' input
    drives B x_t (B, T, 2 n) and the initial state h0 (B, N)."""

    @staticmethod
    def forward(ctx, drives: torch.Tensor, gate_drives: torch.Tensor, h0: torch.Tensor, layer: nn.Module,
                gate_weight: torch.Tensor, gate_bias: torch.Tensor, k: int, *parameters: torch.Tensor) -> torch.Tensor:
        tiny = torch.finfo(drives.dtype).tiny
        batch, steps, width = drives.shape
        (matrix,) = type(layer).row_matrices([layer])
        h = h0.view(batch, k, -1)
        states, saved = [], []
        for t in range(steps):
            norm = (h * h).sum(1).clamp_min_(tiny).sqrt_()  # (B, n)
            gates = torch.addmm(gate_bias, norm, gate_weight.t()).add_(gate_drives[:, t]).sigmoid_()
            update, reset = gates.unsqueeze(1).chunk(2, dim=-1)
            gated = reset * h
            pre = torch.mm(gated.view(-1, matrix.shape[1]), matrix.t()).view(batch, -1).add_(drives[:, t]).view_as(h)
            candidate, r2, tanh, scale = radial_forward(pre, tiny)
            saved.append((h, norm, gates, gated, pre, r2, tanh, scale, candidate))
            h = torch.lerp(h, candidate, update)
            states.append(h)
        ctx.saved, ctx.layer, ctx.k = saved, layer, k
        ctx.matrix, ctx.gate_weight = matrix, gate_weight
        return torch.stack(states, 1).view(batch, steps, width)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_states: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        matrix, gate_weight, layer = ctx.matrix, ctx.gate_weight, ctx.layer
        batch, steps, width = grad_states.shape
        grads = grad_states.view(batch, steps, ctx.k, -1)
        d_drives = torch.empty_like(grad_states)
        d_gate_drives = grad_states.new_empty(batch, steps, gate_weight.shape[0])
        d_matrix, d_gate_weight = torch.zeros_like(matrix), torch.zeros_like(gate_weight)
        dh = torch.zeros_like(grads[:, 0])
        for t in reversed(range(steps)):
            h, norm, gates, gated, pre, r2, tanh, scale, candidate = ctx.saved[t]
            dh = dh + grads[:, t]
            update, reset = gates.unsqueeze(1).chunk(2, dim=-1)
            d_candidate = update * dh
            d_update = ((candidate - h) * dh).sum(1)
            dh = dh - d_candidate
            d_pre = radial_backward(d_candidate, pre, r2, tanh, scale)
            d_drives[:, t] = d_pre.view(batch, -1)
            rows = d_pre.view(-1, matrix.shape[0])
            d_matrix.addmm_(rows.t(), gated.view(-1, matrix.shape[1]))
            d_gated = torch.mm(rows, matrix).view_as(h)
            d_reset = (d_gated * h).sum(1)
            d_gates = torch.cat((d_update, d_reset), 1).mul_(gates * (1 - gates))
            d_gate_drives[:, t] = d_gates
            d_gate_weight.addmm_(d_gates.t(), norm)
            dh = torch.addcmul(dh, reset, d_gated).addcmul_(h, (d_gates @ gate_weight / norm).unsqueeze(1))
        d_gate_bias = d_gate_drives.sum((0, 1))
        parameter_grads = type(layer).parameter_gradients([layer], [d_matrix])
        return (d_drives, d_gate_drives, dh.reshape(batch, width), None, d_gate_weight, d_gate_bias, None,
                *parameter_grads)


def radial_sequence(drives: torch.Tensor, h0: torch.Tensor, layer: nn.Module, k: int) -> torch.Tensor:
    """`RadialSequence` for `EquivariantRNN`'s simple cell (one autograd node for the sequence)."""
    return RadialSequence.apply(drives, h0, layer, k, *layer.parameters())


def gated_radial_sequence(drives: torch.Tensor, gate_drives: torch.Tensor, h0: torch.Tensor, layer: nn.Module,
                          gate_state: nn.Linear, k: int) -> torch.Tensor:
    """`GatedRadialSequence` for `EquivariantRNN`'s gated cell (one autograd node for the sequence)."""
    return GatedRadialSequence.apply(drives, gate_drives, h0, layer, gate_state.weight, gate_state.bias, k,
                                     *layer.parameters())
