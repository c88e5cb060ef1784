"""Entanglement profiles against exact states, invariances, Page's formula, the LoRA null, and quimb
(research notes, section 9.3; float64); numbers that are not numbers, fuzzed."""

import math
import re
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from goldstone.analysis.area_law import area_law_bootstrap, area_law_fits
from goldstone.observables import entanglement
from goldstone.observables.entanglement import (entanglement_profile, lora_profile, prime_factors,
                                                random_softmax_attention, random_state_profiles, valley_width)
from goldstone.theory.entanglement import low_rank_centre, page_curve, page_entropy

LN2 = math.log(2)


def per_cut_svd(matrix, dims):
    """The reference: the singular values of every unfolding of psi = vec(M) / |M|."""
    psi = (matrix / matrix.norm()).reshape(-1)
    out = []
    for k in range(1, len(dims)):
        p = torch.linalg.svdvals(psi.reshape(math.prod(dims[:k]), -1)).pow(2)
        p = p[p > 0]
        out.append(-(p * p.log()).sum())
    return torch.stack(out)


def test_sites_are_prime_factors_largest_first():
    assert prime_factors(384) == [3, 2, 2, 2, 2, 2, 2, 2] and prime_factors(7) == [7]
    with pytest.raises(ValueError, match="multiply to"):
        entanglement_profile(torch.eye(6), row_dims=[4])


def test_product_state_identity_and_ghz():
    assert entanglement_profile(torch.ones(8, 16)).abs().max() < 1e-12
    identity = entanglement_profile(torch.eye(16))  # S(k) = ln2 min(k, n - k), ln 16 at the centre
    assert torch.allclose(identity, LN2 * torch.tensor([1.0, 2, 3, 4, 3, 2, 1], dtype=torch.float64), atol=1e-12)
    ghz = torch.zeros(8, 8, dtype=torch.float64)
    ghz[0, 0] = ghz[-1, -1] = 1
    assert torch.allclose(entanglement_profile(ghz), torch.full((5,), LN2, dtype=torch.float64), atol=1e-12)


def test_matches_per_cut_svd_on_mixed_radix_and_in_batches():
    g = torch.Generator().manual_seed(0)
    batch = torch.randn(3, 12, 18, generator=g, dtype=torch.float64)
    profiles = entanglement_profile(batch)
    for m, profile in zip(batch, profiles):
        assert (profile - per_cut_svd(m, [3, 2, 2, 3, 3, 2])).abs().max() < 1e-12


def test_invariances():
    g = torch.Generator().manual_seed(1)
    m = torch.randn(16, 16, generator=g, dtype=torch.float64)
    base = entanglement_profile(m)
    assert torch.allclose(entanglement_profile(-3.7 * m), base, atol=1e-12)
    u, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))
    assert abs(float(entanglement_profile(u @ m @ v.T)[3] - base[3])) < 1e-12  # the centre cut only
    per_site = torch.linalg.qr(torch.randn(2, 2, generator=g, dtype=torch.float64))[0]
    kron = per_site
    for _ in range(3):
        kron = torch.kron(kron, torch.linalg.qr(torch.randn(2, 2, generator=g, dtype=torch.float64))[0])
    assert torch.allclose(entanglement_profile(kron @ m), base, atol=1e-12)  # site-local maps keep every cut
    assert abs(float(entanglement_profile(m.T)[3] - base[3])) < 1e-12


def test_lora_factors_equal_the_dense_update_and_obey_the_rank_bound():
    g = torch.Generator().manual_seed(2)
    b, a = torch.randn(64, 4, generator=g, dtype=torch.float64), torch.randn(4, 96, generator=g, dtype=torch.float64)
    factored, dense = lora_profile(b, a), entanglement_profile(b @ a)
    assert (factored - dense).abs().max() < 1e-10
    centre = len(prime_factors(64)) - 1
    assert float(dense.max()) < 6 and float(dense[centre]) <= math.log(4) + 1e-12
    assert float(lora_profile(b[:, :1], a[:1])[centre]) < 1e-12  # rank 1: a product across the centre
    bc = torch.complex(b, torch.randn(64, 4, generator=g, dtype=torch.float64))
    ac = torch.complex(a, torch.randn(4, 96, generator=g, dtype=torch.float64))
    assert (lora_profile(bc, ac) - entanglement_profile(bc @ ac)).abs().max() < 1e-10  # complex factors too


def test_zero_update_is_nan_with_a_warning():
    with pytest.warns(UserWarning, match="undefined"):
        assert torch.isnan(lora_profile(torch.zeros(8, 2), torch.randn(2, 8))).all()
    with pytest.warns(UserWarning, match="undefined"):
        assert torch.isnan(entanglement_profile(torch.zeros(2, 4, 4))).all()


def test_page_formula_against_complex_gaussian_states():
    """Complex Gaussian 32 x 32 states, 2000 samples: mean within 3 s.e. of Page's 2.96631."""
    g = torch.Generator().manual_seed(3)
    z = torch.complex(torch.randn(2000, 32, 32, generator=g, dtype=torch.float64),
                      torch.randn(2000, 32, 32, generator=g, dtype=torch.float64))
    p = torch.linalg.svdvals(z).pow(2)
    p = p / p.sum(-1, keepdim=True)
    s = -(p * p.log()).sum(-1)
    assert page_entropy(32, 32) == pytest.approx(2.96631, abs=1e-5)
    assert abs(float(s.mean()) - page_entropy(32, 32)) < 3 * float(s.std()) / 2000 ** 0.5
    assert page_curve([2, 2, 2, 2]).tolist() == pytest.approx([page_entropy(2, 8), page_entropy(4, 4),
                                                               page_entropy(8, 2)])


def test_random_low_rank_centre_matches_the_null():
    """d = 256, r = 4 and 16, 40 samples: the centre within 0.02 of ln r - r/(2 d_out) - r/(2 d_in)."""
    g = torch.Generator().manual_seed(4)
    for r in (4, 16):
        b = torch.randn(40, 256, r, generator=g, dtype=torch.float64)
        a = torch.randn(40, r, 256, generator=g, dtype=torch.float64)
        centre = lora_profile(b, a)[:, 7].mean()
        assert abs(float(centre) - low_rank_centre(r, 256, 256)) < 0.02


def test_agrees_with_quimb():
    quimb_tensor = pytest.importorskip("quimb.tensor")
    g = torch.Generator().manual_seed(5)
    m = torch.randn(24, 16, generator=g, dtype=torch.float64)
    dims = [3, 2, 2, 2, 2, 2, 2, 2]
    psi = (m / m.norm()).reshape(-1).numpy()
    mps = quimb_tensor.MatrixProductState.from_dense(psi, dims=dims, cutoff=0.0)
    theirs = torch.tensor([mps.entropy(k) * LN2 for k in range(1, len(dims))], dtype=torch.float64)
    assert (entanglement_profile(m) - theirs).abs().max() < 1e-12


def test_matrix_product_state_is_exact_untruncated_and_has_bond_r_for_lora():
    from goldstone.observables.entanglement import matrix_product_state

    g = torch.Generator().manual_seed(6)
    b, a = torch.randn(48, 3, generator=g, dtype=torch.float64), torch.randn(3, 32, generator=g, dtype=torch.float64)
    cores, fidelity = matrix_product_state(b @ a)
    assert fidelity == pytest.approx(1.0, abs=1e-12)
    cores, fidelity = matrix_product_state(b @ a, cutoff=1e-20)  # drops only round-off singular values
    assert fidelity == pytest.approx(1.0, abs=1e-12)
    centre = len(prime_factors(48))
    assert cores[centre - 1].shape[-1] == 3  # the row|column bond is the LoRA rank
    m = torch.randn(32, 32, generator=g, dtype=torch.float64)
    _, truncated = matrix_product_state(m, max_bond=4)
    assert 0 < truncated < 1


def test_permutation_null_keeps_the_centre():
    from goldstone.observables.entanglement import permutation_null

    g = torch.Generator().manual_seed(7)
    m = torch.block_diag(*[torch.randn(4, 4, generator=g, dtype=torch.float64) for _ in range(4)])
    base = entanglement_profile(m)
    null = permutation_null(m, samples=8)
    assert torch.allclose(null[:, 3], base[3].expand(8), atol=1e-12)  # the row|column cut of 16 = 2^4
    assert float((null - base).abs().max()) > 0.1  # the block order carried structure elsewhere


def test_bootstrap_intervals_cover_the_fit_and_pick_the_generating_form():
    n = 14
    cut = torch.arange(1, n, dtype=torch.float64)
    clean = 0.3 + 4.0 / 6 * torch.log(2 * n / math.pi * torch.sin(math.pi * cut / n))
    g = torch.Generator().manual_seed(0)
    samples = clean + 0.05 * torch.randn(32, n - 1, generator=g, dtype=torch.float64)
    fits = area_law_bootstrap(samples, draws=500)
    cc = fits["calabrese_cardy"]
    assert cc["slope_low"] < 4.0 < cc["slope_high"] and cc["slope_high"] - cc["slope_low"] < 0.5
    assert cc["wins"] > 0.9 and abs(sum(f["wins"] for f in fits.values()) - 1) < 1e-12
    assert abs(cc["slope"] - area_law_fits(samples.mean(0))["calabrese_cardy"]["slope"]) < 1e-12


def test_random_softmax_attention_is_volume_like_and_uniform_attention_is_a_product():
    maps = random_softmax_attention(64, beta=2.0, samples=4)
    assert torch.allclose(maps.sum(-1), torch.ones(4, 64, dtype=torch.float64))
    profile = entanglement_profile(maps).mean(0)
    assert profile[5] > 2.5  # 6 + 6 qubits: the centre is far above the trained attention's ~1.7
    assert entanglement_profile(random_softmax_attention(64, beta=0.0, samples=1)).abs().max() < 1e-10
    causal = random_softmax_attention(16, samples=1, causal=True)[0]
    assert float(causal.triu(1).abs().max()) == 0


def test_valley_width_is_the_distance_between_the_side_maxima():
    profile = torch.tensor([1.0, 2.0, 3.0, 1.0, 0.2, 1.5, 2.5, 1.0], dtype=torch.float64)
    assert float(valley_width(profile, 5, [2] * 9)) == 7 - 3


def test_monte_carlo_page_curve_real_below_complex_exact():
    complex_profiles = random_state_profiles([2, 2, 2], [2, 2, 2], samples=2000, complex_states=True)
    exact = page_curve([2] * 6)
    error = complex_profiles.std(0) / math.sqrt(2000)
    assert ((complex_profiles.mean(0) - exact).abs() < 4 * error).all()
    real = random_state_profiles([2, 2, 2], [2, 2, 2], samples=2000)
    # research notes: real 8 x 8 states 1.5493 +- 0.0006 at the centre, 0.039 below Page's 1.5885
    assert abs(float(real.mean(0)[2]) - 1.5493) < 4 * float(real.std(0)[2]) / math.sqrt(2000) + 0.002
    assert (real.mean(0) < exact).all()


def test_the_python_api_takes_arrays_and_names_bad_arguments():
    """A numpy array or a list of numbers is a matrix; bad site dimensions, Renyi orders and bases,
    and a matrix of strings, are errors naming the argument."""
    import numpy as np

    m = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = entanglement_profile(m)
    torch.testing.assert_close(entanglement_profile(m.numpy()), expected)
    torch.testing.assert_close(entanglement_profile(m.tolist()), expected)
    with pytest.raises(ValueError, match=r"row_dims must be whole numbers >= 1, got \[6\.5\]"):
        entanglement_profile(m, row_dims=[6.5])
    for alpha in (-1.0, float("nan"), "2"):
        with pytest.raises(ValueError, match="alpha=.*the Renyi order must be a number >= 0"):
            entanglement_profile(m, alpha=alpha)
    for base in (1, 0.5, 0, -2.0, float("inf")):
        with pytest.raises(ValueError, match="base=.*the logarithm's base must be a finite number > 1"):
            entanglement_profile(m, base=base)
    with pytest.raises(TypeError, match="matrix must be a tensor"):
        entanglement_profile([["a", "b"], ["c", "d"]])
    with pytest.raises(ValueError, match="alpha="):
        lora_profile(m[:, :2], m[:2, :], alpha=-1)
    assert entanglement_profile(np.ones((4, 4))).shape == (3,)


def test_degenerate_shapes_and_bad_counts_name_the_argument():
    """An empty matrix has no state; a 1 x 8 matrix is a state on the column sites (its first cut, the
    row|column one, is a product); a cutoff, a bond, a count or a centre out of range is named."""
    with pytest.raises(ValueError, match=r"matrix must be at least 1 x 1, got shape \(0, 8\)"):
        entanglement_profile(torch.ones(0, 8))
    with pytest.raises(ValueError, match="matrix must be a matrix"):
        entanglement_profile(torch.ones(8))
    profile = entanglement_profile(torch.randn(1, 8, dtype=torch.float64))
    assert profile.shape == (3,) and float(profile[0]) == 0 and bool(torch.isfinite(profile).all())
    assert entanglement_profile(torch.randn(7, 1)).shape == (1,)
    with pytest.raises(ValueError, match=r"n must be a whole number >= 1, got 6.5"):
        prime_factors(6.5)
    with pytest.raises(ValueError, match="cutoff must be a finite number >= 0 and <= 1, got nan"):
        entanglement.matrix_product_state(torch.eye(4), cutoff=math.nan)
    with pytest.raises(ValueError, match="max_bond must be a whole number >= 1, got 0"):
        entanglement.matrix_product_state(torch.eye(4), max_bond=0)
    with pytest.raises(ValueError, match="matrix must be finite and not zero"):
        entanglement.matrix_product_state(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="beta must be a finite number, got inf"):
        random_softmax_attention(4, beta=math.inf)
    with pytest.raises(ValueError, match="centre must be"):
        valley_width(torch.ones(3), 1, [2, 2, 2, 2])
    assert math.isnan(float(valley_width(torch.tensor([1.0, math.nan, 1.0]), 2, [2, 2, 2, 2])))


COUNT = st.one_of(st.integers(-2, 5), st.sampled_from([math.nan, math.inf, 2.5, 3.0, "2"]))
NUMBER = st.one_of(st.floats(-1e3, 1e3), st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -1.0, 0.5, 1.0, 2.0]))
DIMS = st.one_of(st.none(), st.lists(COUNT, max_size=3))
ENTRY = st.one_of(st.floats(-10, 10), st.sampled_from([math.nan, math.inf, 0.0]))
MATRIX = hnp.arrays(np.float64, st.tuples(st.integers(0, 6), st.integers(0, 6)), elements=ENTRY).map(torch.tensor)
CALLS = {
    entanglement_profile: {"matrix": MATRIX, "row_dims": DIMS, "col_dims": DIMS, "alpha": NUMBER, "base": NUMBER},
    lora_profile: {"lora_b": MATRIX, "lora_a": MATRIX, "row_dims": DIMS, "col_dims": DIMS, "alpha": NUMBER,
                   "base": NUMBER},
    prime_factors: {"n": st.one_of(COUNT, st.integers(1, 10**6))},
    random_state_profiles: {"row_dims": st.lists(COUNT, max_size=3), "col_dims": st.lists(COUNT, max_size=3),
                            "samples": COUNT},
    entanglement.permutation_null: {"matrix": MATRIX, "samples": COUNT, "row_dims": DIMS, "col_dims": DIMS},
    entanglement.matrix_product_state: {"matrix": MATRIX, "row_dims": DIMS, "col_dims": DIMS,
                                        "max_bond": st.one_of(st.none(), COUNT), "cutoff": NUMBER},
    random_softmax_attention: {"length": COUNT, "head_dim": COUNT, "beta": NUMBER, "samples": COUNT},
    valley_width: {"profile": st.lists(NUMBER, max_size=6).map(torch.tensor), "centre": COUNT,
                   "dims": st.lists(COUNT, max_size=6)},
}


def _values(result) -> np.ndarray:
    """Every number in a result: a tensor, a list of them, a float, or a tuple of those."""
    if isinstance(result, (tuple, list)):
        return np.concatenate([_values(r).ravel() for r in result] or [np.zeros(0)])
    return np.asarray(result.numpy() if torch.is_tensor(result) else result, dtype=float)


@pytest.mark.parametrize("function", list(CALLS), ids=[f.__name__ for f in CALLS])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_api_is_finite_or_names_the_argument(function, data):
    """Finite numbers, or NaN said by a warning (a zero or non-finite matrix has no entropy; a
    valley of a NaN profile is NaN), or a ValueError / TypeError starting with the argument's name."""
    arguments = data.draw(st.fixed_dictionaries(CALLS[function]))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        try:
            result = function(**arguments)
        except (ValueError, TypeError) as err:
            assert re.match(rf"({'|'.join(arguments)})\b", str(err)), (arguments, err)
            return
    values = _values(result)
    assert not np.isinf(values).any(), (arguments, result)
    if np.isnan(values).any():
        assert any("undefined" in str(w.message) for w in said) or (
            function is valley_width and bool(arguments["profile"].isnan().any())), (arguments, result)


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 0.9, 2.0])
def test_renyi_entropies_of_a_rank_deficient_matrix_are_exact(alpha):
    """A 48 x 48 matrix of rank 5 with known singular values: the row|column cut's Renyi entropy equals
    ln(sum p^alpha) / (1 - alpha) over the 5 nonzero p = s^2 / sum s^2 to 1e-12 (the 43 round-off
    eigenvalues of the Gram matrix would add up to 3e-7 at alpha < 1 if counted), and alpha = 0
    gives ln(rank), not ln(48)."""
    generator = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(48, 5, dtype=torch.float64, generator=generator))
    v, _ = torch.linalg.qr(torch.randn(48, 5, dtype=torch.float64, generator=generator))
    s = torch.tensor([3.0, 1.0, 0.3, 0.1, 0.01], dtype=torch.float64)
    matrix = u @ torch.diag(s) @ v.T
    p = s ** 2 / (s ** 2).sum()
    exact = math.log(5) if alpha == 0 else float(torch.log((p ** alpha).sum()) / (1 - alpha))
    measured = entanglement_profile(matrix, row_dims=[48], col_dims=[48], alpha=alpha)
    assert measured.shape == (1,) and float(measured[0]) == pytest.approx(exact, abs=1e-12)
