"""Tests for change points and transition onsets in training curves.

Reference: "Sudden Drops in the Loss: Syntax Acquisition, Phase Transitions, and Simplicity Bias in
MLMs" (Chen, Shwartz-Ziv, Cho, Leavitt, Saphra, ICLR 2024).

Synthetic curves live on a log-spaced grid of 60 checkpoints from step 10 to 30000: one grid point is
0.059 decades, a factor of 1.15 in steps. Transitions are logistic in log10-step with centre c and
width w (decades); the tangent at the inflection meets the plateau before at c - 2w, the onset we
expect, and the one after at c + 2w, the expected end. Noise is Gaussian, its level given as a
fraction of the transition's height. Tolerances are in grid points; every seed must meet them.
"""

from functools import cache
from itertools import combinations

import numpy as np
import pytest

pytest.importorskip("ruptures")

from goldstone.analysis import Transition, detect_changepoints, find_drop, find_rise, lag, onset_bands  # noqa: E402
from goldstone.core.errors import GoldstoneError  # noqa: E402

STEPS = np.geomspace(10, 30_000, 60)
LOG = np.log10(STEPS)
SPACING = LOG[1] - LOG[0]
SEEDS = range(20)


def logistic(centre: float, width: float, before: float, after: float) -> np.ndarray:
    """A curve going from `before` to `after` around log10-step `centre` over `width` decades."""
    with np.errstate(over="ignore"):
        return after + (before - after) / (1 + np.exp((LOG - centre) / width))


def points(step: float, log_step: float) -> float:
    """Signed distance of `step` from 10**log_step, in grid points."""
    return (np.log10(step) - log_step) / SPACING


# ------------------------------------------------------------------- change points


def test_changepoints_of_a_piecewise_constant_curve():
    """Levels 1, 3, 2 changing at grid points 20 and 45, noise 0.2 (10% of the smaller jump): both
    change points are found exactly in all 20 seeds, with at most 2 false ones over all seeds. The
    penalty has no scale to tune: multiplying the curve by 1000 and shifting it changes nothing."""
    index = np.arange(len(STEPS))
    levels = np.select([index < 20, index < 45], [1.0, 3.0], 2.0)
    truth = {STEPS[20], STEPS[45]}
    false = 0
    for seed in SEEDS:
        curve = levels + 0.2 * np.random.default_rng(seed).standard_normal(len(STEPS))
        found = detect_changepoints(STEPS, curve)
        assert truth <= set(found)
        false += len(set(found) - truth)
        assert detect_changepoints(STEPS, 1000 * curve + 5) == found
    assert false <= 2


def test_changepoints_with_a_given_number_use_exactly_that_many():
    """With n_bkps the segmentation is exact (Dynp): 2 gives both changes, 1 the larger jump."""
    index = np.arange(len(STEPS))
    curve = np.select([index < 20, index < 45], [1.0, 3.0], 2.0)
    curve = curve + 0.2 * np.random.default_rng(0).standard_normal(len(STEPS))
    assert detect_changepoints(STEPS, curve, n_bkps=2) == [STEPS[20], STEPS[45]]
    assert detect_changepoints(STEPS, curve, n_bkps=1) == [STEPS[20]]


def best_segmentation(x: np.ndarray, y: np.ndarray, n_bkps: int, degree: int, min_size: int = 2) -> tuple[int, ...]:
    """Brute force: the first indices of the segments after the first, of the least-squares fit of a
    polynomial of `degree` (0: a level, 1: a line in `x`) to every segment, over all admissible splits."""
    @cache
    def rss(a: int, b: int) -> float:
        coefficients = np.polyfit(x[a:b], y[a:b], degree)
        return float(np.sum((y[a:b] - np.polyval(coefficients, x[a:b])) ** 2))

    splits = (c for c in combinations(range(min_size, len(y) - min_size + 1), n_bkps)
              if all(b - a >= min_size for a, b in zip(c, c[1:])))
    return min(splits, key=lambda c: sum(rss(a, b) for a, b in zip((0, *c), (*c, len(y)))))


def test_changepoints_are_steps_of_the_given_grid():
    """A change point is the first step of a new segment, returned as the grid's own step in a Python
    type (int for integer steps, float for float ones). A noise-free jump between 2500 and 2600 gives
    [2600]. With n_bkps = 1, 2, 3 the change points are those of the exact least-squares segmentation,
    found here by brute force over all splits with segments of at least 2 points: segment means for
    "l2" (levels 0, 1, 0.4 changing at points 12 and 27), lines in log-step for "linear" (slopes 0, 2,
    -1 in log10-step, kinks at points 15 and 30), noise 0.15 and 0.05."""
    steps = np.arange(1, 41) * 100
    found = detect_changepoints(steps, np.where(np.arange(40) < 25, 0.0, 1.0))
    assert found == [2600] and type(found[0]) is int
    rng = np.random.default_rng(3)
    index = np.arange(40)
    levels = np.select([index < 12, index < 27], [0.0, 1.0], 0.4) + 0.15 * rng.standard_normal(40)
    for grid in (steps, 1.5 * steps):
        log = np.log10(grid)
        kinked = 2 * np.clip(log - log[15], 0, log[30] - log[15]) - np.maximum(log - log[30], 0)
        kinked = kinked + 0.05 * rng.standard_normal(40)
        for model, degree, curve in (("l2", 0, levels), ("linear", 1, kinked)):
            for n_bkps in (1, 2, 3):
                found = detect_changepoints(grid, curve, n_bkps=n_bkps, model=model)
                expected = [grid[i].item() for i in best_segmentation(np.log(grid), curve, n_bkps, degree)]
                assert found == expected, (model, n_bkps)
                assert all(type(step) is type(grid[0].item()) for step in found)


def test_linear_model_finds_a_kink_in_log_step():
    """A flat curve that starts to climb linearly in log-step at grid point 30, noise 0.05 (2.5% of
    the climb): the "linear" model puts a change point within 2 grid points of the kink in all 20
    seeds."""
    kink = LOG[30]
    for seed in SEEDS:
        curve = 2 * np.maximum(LOG - kink, 0) + 0.05 * np.random.default_rng(seed).standard_normal(len(STEPS))
        found = detect_changepoints(STEPS, curve, model="linear")
        assert min(abs(points(step, kink)) for step in found) <= 2


def test_pure_noise_rarely_has_a_change_point():
    """The automatic penalty keeps false alarms rare on 40 pure-noise curves: at most 4 (10%) with
    a change point and at most 2 (5%) with a drop or a rise. Measured over 300 curves: 4.0% ("l2"),
    4.7% ("linear"), 0.7% (find_drop, find_rise); the plain BIC penalty gives about 15%."""
    curves = [np.random.default_rng(1000 + seed).standard_normal(len(STEPS)) for seed in range(40)]
    assert sum(bool(detect_changepoints(STEPS, c)) for c in curves) <= 4
    assert sum(bool(detect_changepoints(STEPS, c, model="linear")) for c in curves) <= 4
    assert sum(find_drop(STEPS, c) is not None for c in curves) <= 2
    assert sum(find_rise(STEPS, c) is not None for c in curves) <= 2


# -------------------------------------------------------------------------- drops


@pytest.mark.parametrize(("noise", "tolerance"), [(0.01, 2), (0.03, 2), (0.05, 3)])
def test_find_drop_locates_a_sigmoid_loss_drop(noise, tolerance):
    """Loss 7 -> 4 over w = one grid spacing (10-90% of the drop within 4.4 grid points), centre
    uniform in steps 100..3000, noise 1%, 3%, 5% of the drop: onset within 2 grid points of c - 2w
    and end within 2 of c + 2w at 1% and 3%; within 3 at 5% (worst seen: 1.0, 1.5, 2.6)."""
    width = SPACING
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        centre = rng.uniform(2, 3.5)
        drop = find_drop(STEPS, logistic(centre, width, 7, 4) + 3 * noise * rng.standard_normal(len(STEPS)))
        assert abs(points(drop.onset, centre - 2 * width)) <= tolerance
        assert abs(points(drop.end, centre + 2 * width)) <= tolerance
        assert drop.onset == drop.start


def test_find_drop_locates_a_broad_drop_to_its_width():
    """A broad drop (w = 3 grid spacings, 10-90% over 13 grid points), noise 1%: onset within
    w + 1 = 4 grid points of c - 2w in all 20 seeds (worst seen: 2.6; at 3% noise up to 7)."""
    width = 3 * SPACING
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        centre = rng.uniform(2.2, 3.3)
        drop = find_drop(STEPS, logistic(centre, width, 7, 4) + 0.03 * rng.standard_normal(len(STEPS)))
        assert abs(points(drop.onset, centre - 2 * width)) <= 4


def test_a_noise_free_step_is_one_grid_interval():
    """An exact step between grid points 29 and 30: the rise window is exactly that interval, and
    the curve has no drop."""
    curve = np.where(np.arange(len(STEPS)) < 30, 0.1, 0.6)
    assert find_rise(STEPS, curve) == Transition(start=STEPS[29], end=STEPS[30], onset=STEPS[29])
    assert find_drop(STEPS, curve) is None


@pytest.mark.parametrize("noise", [0.0, 0.03, 0.1])
def test_find_rise_locates_a_step_like_uas_rise(noise):
    """UAS 0.1 -> 0.6 in a step (w = 0.02 grid spacings) at a centre uniform in steps 100..3000,
    noise 0, 3%, 10% of the rise: the structure onset is the last checkpoint before the step in all
    20 seeds."""
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        centre = rng.uniform(2, 3.5)
        uas = logistic(centre, 0.02 * SPACING, 0.1, 0.6) + 0.5 * noise * rng.standard_normal(len(STEPS))
        rise = find_rise(STEPS, uas)
        assert -1 < points(rise.onset, centre) < 0


@pytest.mark.parametrize("decades", [0.0, 0.7])
def test_lag_between_loss_drop_and_uas_rise(decades):
    """Loss drop at centre a (steps 160..630), UAS rise at b = a (simultaneous, as in the paper) or
    a + 0.7 decades, both w = one grid spacing, noise 3%: both onsets within 2 grid points (a factor
    r^2 = 1.31 in steps) of a - 2w and b - 2w, so |lag - true lag| <= (r^2 - 1)(tA + tB), in 10 seeds."""
    width, r2 = SPACING, 10 ** (2 * SPACING)
    for seed in range(10):
        rng = np.random.default_rng(seed)
        a = rng.uniform(2.2, 2.8)
        loss = logistic(a, width, 7, 4) + 0.09 * rng.standard_normal(len(STEPS))
        uas = logistic(a + decades, width, 0.1, 0.6) + 0.015 * rng.standard_normal(len(STEPS))
        t_a, t_b = 10 ** (a - 2 * width), 10 ** (a + decades - 2 * width)
        found = lag(STEPS, loss, uas)
        assert found == find_rise(STEPS, uas).onset - find_drop(STEPS, loss).onset
        assert abs(found - (t_b - t_a)) <= (r2 - 1) * (t_a + t_b)


# -------------------------------------------------------------------------- bands


def test_onset_bands_cover_the_mean_onset_of_the_seeds():
    """10 seeds whose UAS rises at centres c_s ~ N(3, 0.1) decades, w = one grid spacing, noise 3%:
    the mean onset is within 1 grid point of the seeds' mean true onset (in log-step), which the 99%
    band contains (coverage over 40 draws: 39); the 90% band lies inside it with positive width."""
    rng = np.random.default_rng(7)
    centres = 3 + 0.1 * rng.standard_normal(10)
    curves = np.array([logistic(c, SPACING, 0.1, 0.6) + 0.015 * rng.standard_normal(len(STEPS)) for c in centres])
    truth = centres.mean() - 2 * SPACING
    wide = onset_bands(STEPS, curves, level=0.99)
    narrow = onset_bands(STEPS, curves)
    assert wide["n_detected"] == 10 and wide["onsets"].shape == (10,)
    assert wide["onset"] == pytest.approx(np.exp(np.log(wide["onsets"]).mean()))
    assert abs(points(wide["onset"], truth)) <= 1
    assert wide["band"][0] < 10**truth < wide["band"][1]
    assert wide["band"][0] <= narrow["band"][0] < narrow["band"][1] <= wide["band"][1]


def test_onset_bands_with_one_seed_or_a_seed_without_onset():
    """One seed: the point estimate and a (nan, nan) band. A seed without a transition (a flat
    curve) is left out and shows as NaN in `onsets`."""
    rise = logistic(3, SPACING, 0.1, 0.6)
    single = onset_bands(STEPS, rise[None])
    assert single["onset"] == pytest.approx(find_rise(STEPS, rise).onset)
    assert np.isnan(single["band"]).all() and single["n_detected"] == 1
    mixed = onset_bands(STEPS, np.array([rise, np.full(len(STEPS), 0.3), rise]))
    assert mixed["n_detected"] == 2 and np.isnan(mixed["onsets"][1])
    assert mixed["onset"] == pytest.approx(single["onset"])
    none = onset_bands(STEPS, np.full((2, len(STEPS)), 0.3))
    assert none["n_detected"] == 0 and np.isnan(none["onset"]) and np.isnan(none["band"]).all()


# -------------------------------------------------------------------------- errors


FLAT = np.ones(len(STEPS))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: find_drop(STEPS[::-1], FLAT), "steps must be strictly increasing"),
        (lambda: find_drop(STEPS, FLAT[:-1]), "loss has shape"),
        (lambda: find_drop(STEPS[:3], FLAT[:3]), "at least 4"),
        (lambda: find_drop(STEPS, np.where(LOG > 3, np.nan, 1.0)), "loss is NaN"),
        (lambda: find_rise(np.arange(60), FLAT), "steps must be positive"),
        (lambda: find_rise(STEPS, FLAT.reshape(6, 10)), "values has shape"),
        (lambda: lag(STEPS, logistic(3, SPACING, 7, 4), np.full(len(STEPS), np.nan)), "uas is NaN"),
        (lambda: lag(STEPS, FLAT, logistic(3, SPACING, 0.1, 0.6)), "loss has no drop"),
        (lambda: detect_changepoints(STEPS, FLAT, model="rbf"), "model"),
        (lambda: detect_changepoints(STEPS, FLAT, n_bkps=0), "n_bkps"),
        (lambda: detect_changepoints(STEPS, FLAT, n_bkps=40), "n_bkps"),
        (lambda: detect_changepoints(STEPS, FLAT, min_size=0), "min_size"),
        (lambda: onset_bands(STEPS, FLAT), "curves"),
        (lambda: onset_bands(STEPS, np.ones((3, 59))), "curves"),
        (lambda: onset_bands(STEPS, np.array([FLAT, FLAT + np.nan])), r"curves\[1\] is NaN"),
        (lambda: onset_bands(STEPS, np.array([FLAT, FLAT]), level=1.5), "level"),
        (lambda: onset_bands(STEPS, np.array([FLAT, FLAT]), n_boot=0), "n_boot"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    """Each bad input raises GoldstoneError with one line naming the argument at fault."""
    with pytest.raises(GoldstoneError, match=message):
        call()


def test_linear_axis_finds_an_early_ramp_that_log_steps_miss():
    """Evenly spaced checkpoints: a broad rise of 0.45 over 900-1500 and a small late one of 0.08
    over 2500-2650. Per log-step the late rise is steeper (1.4 against 0.9 per unit of ln step); per
    step the broad one is (7.5e-4 against 5.3e-4)."""
    steps = np.arange(600, 3001, 50)
    values = 0.35 + 0.45 * np.clip((steps - 900) / 600, 0, 1) + 0.08 * np.clip((steps - 2500) / 150, 0, 1)
    values = values + 0.01 * np.random.default_rng(0).standard_normal(len(steps))
    linear = find_rise(steps, values, axis="linear")
    assert linear is not None and 850 <= linear.onset <= 1000 and linear.end >= 1400
    log = find_rise(steps, values)
    assert log is not None and log.onset > 2000
    with pytest.raises(GoldstoneError, match="axis"):
        find_rise(steps, values, axis="sqrt")
