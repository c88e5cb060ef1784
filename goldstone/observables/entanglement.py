"""Entanglement profiles of matrices: weights, fine-tuning updates, attention maps.

"Artificial Entanglement in the Fine-Tuning of Large Language Models" (Chen, Wu, Liu, Wang,
Chen, Li, 2026). A matrix M (d_out x d_in) is read as the pure state psi = vec(M) / |M|_F on sites
= the prime factors of d_out then those of d_in, each largest first, in C order (so a rank-r
update B A is exactly a matrix product state of bond r at the row|column cut, and for 384 =
3 x 2^7 the first row sites index MiniLM's 12 heads). Cut k puts the first k sites on the left;
its entropy is that of the squared singular values p_i of the k-th unfolding: von Neumann
S_k = -sum p_i ln p_i (nats; base 2 on request) or Renyi S_k = ln(sum p_i^alpha) / (1 - alpha).

Computed exactly from two Gram matrices: rho_rows = M M^T / |M|^2 and rho_cols = M^T M / |M|^2;
a row cut traces rho_rows over the trailing row sites, a column cut traces rho_cols over the
leading column sites, then one symmetric eigendecomposition per cut, all in float64. A LoRA update
never needs forming: rho_rows = B (A A^T) B^T / |B A|^2. The numerical baselines (random states,
permuted matrices) are here too; the closed forms they are checked against are in
`goldstone.theory.entanglement`.
"""

from __future__ import annotations

import math
import warnings

import torch

from goldstone.theory.arguments import real, whole, wholes


def prime_factors(n: int) -> list[int]:
    """The prime factors of `n` (a whole number >= 1), largest first (384 -> [3, 2, 2, 2, 2, 2, 2, 2])."""
    n = whole("n", n)
    factors, p = [], 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    if n > 1:
        factors.append(n)
    return sorted(factors, reverse=True)


def _sites(size: int, dims: list[int] | None, which: str) -> list[int]:
    """The sites of a side of `size` (its prime factors unless `dims`, whole numbers multiplying to
    `size`), dimensions of 1 dropped ([1] for a side of 1)."""
    dims = prime_factors(size) if dims is None else wholes(which, dims)
    if math.prod(dims) != size:
        raise ValueError(f"{which}: the site dimensions {dims} multiply to {math.prod(dims)}, not {size}")
    return [d for d in dims if d > 1] or [1]


def _entropies(probabilities: torch.Tensor, alpha: float) -> torch.Tensor:
    """Entropy of each row of eigenvalues; Renyi as (alpha ln p_max + ln sum (p / p_max)^alpha) / (1 - alpha),
    which no large alpha underflows. Eigenvalues below d eps p_max (d of them, eps the float64 epsilon) are
    the round-off of zero eigenvalues, at the matrix's own numerical rank, and count as zero: they contribute
    nothing, even with alpha < 1 where p^alpha would magnify them, and alpha = 0 gives ln(rank)."""
    p = probabilities.clamp_min(0)
    p = torch.where(p > p.amax(-1, keepdim=True) * p.shape[-1] * torch.finfo(p.dtype).eps, p, 0)
    p = p / p.sum(-1, keepdim=True)
    if alpha == 1.0:
        return -torch.where(p > 0, p * torch.log(torch.where(p > 0, p, torch.ones_like(p))), torch.zeros_like(p)).sum(-1)
    top = p.amax(-1)
    if math.isinf(alpha):
        return -torch.log(top)
    powers = torch.where(p > 0, (p / top[..., None]).pow(alpha), 0)
    return (alpha * torch.log(top) + torch.log(powers.sum(-1))) / (1 - alpha)


def _partial_spectra(rho: torch.Tensor, dims: list[int], keep_leading: bool) -> list[torch.Tensor]:
    """Eigenvalues of rho (..., d, d) reduced to its first k sites (keep_leading) or its last k sites,
    for k = 1 .. len(dims) - 1."""
    out = []
    size = rho.shape[-1]
    batch = rho.shape[:-2]
    for k in range(1, len(dims)):
        kept = math.prod(dims[:k]) if keep_leading else math.prod(dims[k:])
        rest = size // kept
        if keep_leading:
            reduced = rho.reshape(*batch, kept, rest, kept, rest).diagonal(dim1=-3, dim2=-1).sum(-1)
        else:
            reduced = rho.reshape(*batch, rest, kept, rest, kept).diagonal(dim1=-4, dim2=-2).sum(-1)
        out.append(torch.linalg.eigvalsh(reduced))
    return out


def _profile_from_grams(rows: torch.Tensor, cols: torch.Tensor, row_dims: list[int], col_dims: list[int],
                        alpha: float, base: float) -> torch.Tensor:
    """Cut entropies from the two Gram matrices (already normalised to trace 1)."""
    spectra = _partial_spectra(rows, row_dims, True) if len(row_dims) > 1 else []
    spectra.append(torch.linalg.eigvalsh(rows))  # the row|column cut
    spectra += _partial_spectra(cols, col_dims, False) if len(col_dims) > 1 else []
    entropies = torch.stack([_entropies(s, alpha) for s in spectra], -1)
    return entropies / math.log(base) if base != math.e else entropies


def _matrix(matrix: torch.Tensor, what: str = "matrix", batched: bool = True) -> torch.Tensor:
    """`matrix` (a tensor, or a numpy array or nested list of numbers) as float64 or complex128: a matrix
    at least 1 x 1, or a batch of them (..., rows, columns) when `batched`."""
    if not torch.is_tensor(matrix):
        try:
            matrix = torch.as_tensor(matrix)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{what} must be a tensor (or an array of numbers), got {type(matrix).__name__}") from err
    if not (matrix.is_floating_point() or matrix.is_complex() or matrix.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{what} must hold numbers, got {matrix.dtype}")
    if matrix.dtype in (torch.float16, torch.bfloat16):
        warnings.warn(f"{what} is {matrix.dtype}: its rounding noise looks like a volume law; use float32 or "
                      "float64 weights for updates", stacklevel=3)
    if matrix.dim() < 2 or (matrix.dim() > 2 and not batched):
        raise ValueError(f"{what} must be a matrix{' (or a batch of them)' if batched else ''}, got shape "
                         f"{tuple(matrix.shape)}")
    if 0 in matrix.shape[-2:]:
        raise ValueError(f"{what} must be at least 1 x 1, got shape {tuple(matrix.shape)}")
    return matrix.detach().to(torch.complex128 if matrix.is_complex() else torch.float64)


def _check_entropy(alpha: float, base: float) -> None:
    """Renyi order alpha in [0, inf] and logarithm base > 1, finite."""
    if not (isinstance(alpha, (int, float)) and alpha >= 0):  # NaN fails too
        raise ValueError(f"alpha={alpha!r}: the Renyi order must be a number >= 0 (1 for von Neumann, inf for min)")
    if not (isinstance(base, (int, float)) and math.isfinite(base) and base > 1):
        raise ValueError(f"base={base!r}: the logarithm's base must be a finite number > 1 (e: nats, 2: bits)")


def entanglement_profile(matrix: torch.Tensor, row_dims: list[int] | None = None, col_dims: list[int] | None = None,
                         alpha: float = 1.0, base: float = math.e) -> torch.Tensor:
    """The n - 1 cut entropies (float64, nats unless `base`) of `matrix` (..., d_out, d_in), real or complex
    (a pure state's amplitudes), batched over leading dimensions; Renyi-`alpha` when alpha != 1. `row_dims` /
    `col_dims` override the default sites (prime factors, largest first). A zero or non-finite matrix gives NaN
    (with a warning); an empty matrix is an error. A 1 x n matrix is a state on the column sites, its first
    cut (the row|column one) a product."""
    _check_entropy(alpha, base)
    m = _matrix(matrix)
    rows_d, cols_d = _sites(m.shape[-2], row_dims, "row_dims"), _sites(m.shape[-1], col_dims, "col_dims")
    norm2 = m.abs().pow(2).sum((-2, -1))
    bad = ~torch.isfinite(norm2) | (norm2 == 0)
    if bool(bad.any()):
        warnings.warn(f"{int(bad.sum())} matrix (matrices) zero or not finite: entropy undefined, NaN returned "
                      "(a LoRA update at step 0 is zero)", stacklevel=2)
        m = torch.where(bad[..., None, None], torch.ones_like(m), m)
        norm2 = torch.where(bad, m.abs().pow(2).sum((-2, -1)), norm2)
    scale = norm2[..., None, None]
    profile = _profile_from_grams(m @ m.mH / scale, m.mT @ m.conj() / scale, rows_d, cols_d, alpha, base)
    return torch.where(bad[..., None], torch.full_like(profile, math.nan), profile)


def lora_profile(lora_b: torch.Tensor, lora_a: torch.Tensor, row_dims: list[int] | None = None,
                 col_dims: list[int] | None = None, alpha: float = 1.0, base: float = math.e) -> torch.Tensor:
    """The profile of Delta W = B A (d_out x r times r x d_in) without forming it: rho_rows =
    B (A A^H) B^H and rho_cols = A^T (B^H B)^T A*, normalised by |B A|_F^2 = tr(B^H B A A^H) (for real
    factors, ^H is ^T; complex factors are reduced like `entanglement_profile`'s complex states)."""
    _check_entropy(alpha, base)
    b, a = _matrix(lora_b, "lora_b"), _matrix(lora_a, "lora_a")
    if b.shape[-1] != a.shape[-2]:
        raise ValueError(f"lora_b {tuple(b.shape)} and lora_a {tuple(a.shape)} do not chain")
    rows_d, cols_d = _sites(b.shape[-2], row_dims, "row_dims"), _sites(a.shape[-1], col_dims, "col_dims")
    aat, btb = a @ a.mH, b.mH @ b
    norm2 = (btb * aat.mT).sum((-2, -1)).real
    if bool((norm2 == 0).any()) or not bool(torch.isfinite(norm2).all()):
        warnings.warn("the LoRA update B A is zero or not finite (step 0: B = 0): entropy undefined, NaN returned",
                      stacklevel=2)
        return torch.full((*norm2.shape, len(rows_d) + len(cols_d) - 1), math.nan, dtype=torch.float64)
    scale = norm2[..., None, None]
    return _profile_from_grams(b @ aat @ b.mH / scale, a.mT @ btb.mT @ a.conj() / scale, rows_d, cols_d, alpha, base)


def random_state_profiles(row_dims: list[int], col_dims: list[int], samples: int = 100, seed: int = 0,
                          complex_states: bool = False) -> torch.Tensor:
    """Monte Carlo Page curve: (samples, n - 1) profiles of i.i.d. Gaussian matrices on the given sites,
    real (what a random weight matrix is; about 0.4/m below Page's formula for an m x m cut) or
    complex (Page's ensemble), float64."""
    row_dims, col_dims, samples = wholes("row_dims", row_dims), wholes("col_dims", col_dims), whole("samples", samples)
    g = torch.Generator().manual_seed(seed)
    shape = (samples, math.prod(row_dims), math.prod(col_dims))
    m = torch.randn(shape, generator=g, dtype=torch.float64)
    if complex_states:
        m = torch.complex(m, torch.randn(shape, generator=g, dtype=torch.float64))
    return entanglement_profile(m, row_dims, col_dims)


def permutation_null(matrix: torch.Tensor, samples: int = 20, seed: int = 0, row_dims: list[int] | None = None,
                     col_dims: list[int] | None = None) -> torch.Tensor:
    """Profiles of `matrix` with its rows and columns randomly permuted (`samples`, seeded): the
    centre cut is unchanged (a permutation is orthogonal), the off-centre cuts lose whatever the
    order of the neurons carried and move toward Page's curve for a generic matrix."""
    m, samples = _matrix(matrix, batched=False), whole("samples", samples)
    g = torch.Generator().manual_seed(seed)
    rows = torch.stack([torch.randperm(m.shape[-2], generator=g) for _ in range(samples)])
    cols = torch.stack([torch.randperm(m.shape[-1], generator=g) for _ in range(samples)])
    shuffled = m[rows[:, :, None], cols[:, None, :]]
    return entanglement_profile(shuffled, row_dims, col_dims)


def matrix_product_state(matrix: torch.Tensor, row_dims: list[int] | None = None, col_dims: list[int] | None = None,
                         max_bond: int | None = None, cutoff: float = 0.0) -> tuple[list[torch.Tensor], float]:
    """TT-SVD of psi = vec(M) / |M|_F on the profile's sites: cores (left bond, site, right bond),
    left-canonical, and the fidelity |<psi|psi_truncated>|^2 (1 when nothing is cut). Each bond
    keeps at most `max_bond` singular values and drops those whose squared sum, relative to the
    total, is at most `cutoff` (in [0, 1]); real or complex."""
    m = _matrix(matrix, batched=False)
    max_bond, cutoff = None if max_bond is None else whole("max_bond", max_bond), real("cutoff", cutoff, 0, 1)
    dims = _sites(m.shape[-2], row_dims, "row_dims") + _sites(m.shape[-1], col_dims, "col_dims")
    norm = m.norm()
    if not bool(torch.isfinite(norm)) or float(norm) == 0:
        raise ValueError("matrix must be finite and not zero (it is read as a state)")
    rest = (m / norm).reshape(1, -1)
    cores = []
    for d in dims[:-1]:
        left = rest.shape[0]
        u, s, vh = torch.linalg.svd(rest.reshape(left * d, -1), full_matrices=False)
        weights = s.pow(2) / s.pow(2).sum()
        tail = torch.flip(torch.cumsum(torch.flip(weights, [0]), 0), [0])  # weight from each index on
        keep = int((tail > cutoff).sum()) if cutoff > 0 else len(s)
        keep = max(1, min(keep, max_bond or keep))
        cores.append(u[:, :keep].reshape(left, d, keep))
        rest = s[:keep, None] * vh[:keep]
    cores.append(rest.reshape(rest.shape[0], dims[-1], 1))
    state = cores[0]
    for core in cores[1:]:
        state = torch.tensordot(state, core, dims=([-1], [0]))
    approx = state.reshape(-1)
    exact = (m / norm).reshape(-1)
    return cores, float(torch.vdot(approx, exact).abs() ** 2 / torch.vdot(approx, approx).real)


def random_softmax_attention(length: int, head_dim: int = 32, beta: float = 1.0, samples: int = 20,
                             causal: bool = False, seed: int = 0) -> torch.Tensor:
    """(samples, length, length) random attention maps softmax(beta Q K^T / sqrt(d_h)) with Q, K
    i.i.d. N(0, 1) (length x d_h), optionally causal: the unstructured baseline for attention
    profiles (volume-law-like for beta >~ 1, unlike trained attention)."""
    length, head_dim, samples = whole("length", length), whole("head_dim", head_dim), whole("samples", samples)
    beta = real("beta", beta)
    g = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(samples, length, head_dim, generator=g, dtype=torch.float64) for _ in range(2))
    scores = beta * q @ k.transpose(-1, -2) / math.sqrt(head_dim)
    if causal:
        scores = scores.masked_fill(torch.ones(length, length, dtype=torch.bool).triu(1), -math.inf)
    return scores.softmax(-1)


def valley_width(profile: torch.Tensor, centre: int, dims: list[int]) -> torch.Tensor:
    """Width of the valley around cut `centre` (1-based) of profiles (..., n - 1) on sites `dims`:
    the distance, in qubits (log2 of the left dimension), between the highest cut left of the centre
    and the highest cut right of it; NaN for a profile holding NaN (a zero matrix's)."""
    dims, centre = wholes("dims", dims), whole("centre", centre, 2)
    profile = torch.as_tensor(profile, dtype=torch.float64)
    if centre > len(dims) - 2:
        raise ValueError(f"centre must be a cut with cuts on both sides, 2 .. {len(dims) - 2} for {len(dims)} sites, "
                         f"got {centre}")
    if profile.dim() < 1 or profile.shape[-1] != len(dims) - 1:
        raise ValueError(f"profile must hold {len(dims) - 1} cuts for {len(dims)} sites, got shape "
                         f"{tuple(profile.shape)}")
    x = torch.tensor([math.log2(math.prod(dims[:k])) for k in range(1, len(dims))], dtype=torch.float64)
    left = profile[..., :centre - 1].argmax(-1)
    right = profile[..., centre:].argmax(-1) + centre
    return torch.where(profile.isnan().any(-1), math.nan, x[right] - x[left])
