"""A stack of equivariant linear layers, each followed by the radial tanh, as one autograd node.

For deep narrow MLPs ("Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information
Propagation": L = 100, N = 64) a CPU step is dominated by per-operation overhead, not by
arithmetic: every tensor op, module call and autograd node costs microseconds. Running the whole
stack as one `torch.autograd.Function`, with the fewest tensor ops per layer, makes training about
1.3x faster than one node per layer (`benchmarks/bench_deep_mlp_training.py`).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from goldstone.models.equivariant import RowMatrixLayer, radial_tanh


def radial_forward(pre: torch.Tensor, tiny: float) -> tuple[torch.Tensor, ...]:
    """phi(p) on components (B, k, n) with what its backward needs: (phi(p), |p|^2, tanh|p|, s)."""
    r2 = (pre * pre).sum(1, keepdim=True).clamp_min_(tiny)
    tanh = r2.sqrt().tanh_()
    scale = tanh * r2.rsqrt()
    return pre * scale, r2, tanh, scale


def radial_backward(grad: torch.Tensor, pre: torch.Tensor, r2: torch.Tensor, tanh: torch.Tensor,
                    scale: torch.Tensor) -> torch.Tensor:
    """dp = s dy + q p (p . dy), the backward of `radial_forward` (see `RadialStack`)."""
    coefficient = torch.addcmul(1 - scale, tanh, tanh, value=-1).div_(r2)
    along = torch.linalg.vecdot(pre, grad, dim=1).unsqueeze(1).mul_(coefficient)
    return torch.addcmul(grad * scale, pre, along)


class RadialStack(torch.autograd.Function):
    """x^{l+1} = phi(z^l), z^l = rows(x^l) M_l^T, for the layers' row matrices M_l, in one node.

    `x` is (B, N_in); its rows are (B N_in / M.shape[1], M.shape[1]), so M = w acts on the k component
    rows of an O(k) layer and a dense M on whole examples; z is read as (B, k, n_out) and
    phi(v) = tanh(|v|) v / |v| applied to every block. Backward: the Jacobian of phi is
    J = s I + c z z^T with s = tanh(r) / r and c = s'(r) / r = (1 - tanh^2 r - s) / r^2, so
    dz = s dy + c z (z . dy); c cancels at small r but enters only as c r^2 |dy|, so the gradient
    keeps full relative precision. |v|^2 is clamped at the dtype's `tiny` (v = 0 gives J = I).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, layers: list[RowMatrixLayer], k: int, *parameters: torch.Tensor) -> torch.Tensor:
        tiny = torch.finfo(x.dtype).tiny
        batch = x.shape[0]
        ctx.layers, ctx.saved = layers, []
        for matrix in type(layers[0]).row_matrices(layers):
            rows = x.view(-1, matrix.shape[1])
            z = torch.mm(rows, matrix.t()).view(batch, k, -1)
            y, r2, t, s = radial_forward(z, tiny)
            x = y.view(batch, -1)
            ctx.saved.append((rows, matrix, z, r2, t, s))
        return x

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        matrix_grads = []
        for rows, matrix, z, r2, t, s in reversed(ctx.saved):
            dz = radial_backward(grad.view(z.shape), z, r2, t, s).view(-1, matrix.shape[0])
            matrix_grads.append(dz.t() @ rows)
            grad = (dz @ matrix).view(z.shape[0], -1)
        layers = ctx.layers
        return grad, None, None, *type(layers[0]).parameter_gradients(layers, matrix_grads[::-1])


def radial_stack(x: torch.Tensor, layers: list[RowMatrixLayer], k: int) -> torch.Tensor:
    """phi(layer_L(... phi(layer_1(x)))) for a 2-D batch `x` of k-major features and layers of one
    class: one autograd node (`RadialStack`) unless a `torch.func` transform (jvp, vmap, jacrev) is
    active, which needs the plain ops (PyTorch's own `autograd.Function.apply` asks the same
    question). Double backward through the node raises; use the plain ops for Hessians."""
    if x.dim() == 2 and not torch._C._are_functorch_transforms_active():
        return RadialStack.apply(x, layers, k, *(p for layer in layers for p in layer.parameters()))
    for layer in layers:
        x = radial_tanh(layer(x), k)
    return x
