"""Winding numbers on synthetic phase fields with known charges."""

import math

import pytest
import torch

from goldstone.analysis.vortex_tracks import track_vortices
from goldstone.analysis.vortices import gated_winding_numbers, winding_numbers
from goldstone.core.errors import GoldstoneError

SIZE = 32


def vortex(i0: float, j0: float, charge: int = 1, size: int = SIZE) -> torch.Tensor:
    """theta(i, j) = charge * atan2(i - i0, j - j0), the core at (i0, j0) inside a plaquette."""
    i, j = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                          indexing="ij")
    return charge * torch.atan2(i - i0, j - j0)


def test_single_vortex_has_charge_one_at_its_plaquette():
    """Off the torus's seams, a lone +1 vortex: one plaquette of charge +1 at its core (the seam of
    the non-periodic field adds compensating charges only at the lattice's wrap-around border)."""
    charges = winding_numbers(vortex(10.5, 12.5))
    assert charges[10, 12] == 1
    interior = charges[1:-2, 1:-2]
    assert int(interior.abs().sum()) == 1


@pytest.mark.parametrize("charge", [-1, 2, -2])
def test_charge_of_higher_and_negative_vortices(charge):
    """A plaquette holds at most one unit (four wrapped links sum to less than 4 pi in size), so a
    charge-2 core shows as two unit charges beside each other: the charge near the core is the
    vortex's, and nothing else appears off the seams."""
    charges = winding_numbers(vortex(15.3, 15.6, charge))
    core = charges[13:18, 13:18]
    assert int(core.sum()) == charge and int(core.abs().sum()) == abs(charge)
    assert int(charges[1:-2, 1:-2].abs().sum()) == abs(charge)


def test_vortex_antivortex_pair_and_zero_total_charge_on_the_torus():
    phase = vortex(8.5, 8.5) - vortex(8.5, 20.5)  # +1 at (8, 8), -1 at (8, 20)
    charges = winding_numbers(phase)
    assert charges[8, 8] == 1 and charges[8, 20] == -1
    assert int(charges.sum()) == 0  # any field on a torus
    noise = winding_numbers(2 * math.pi * torch.rand(5, SIZE, SIZE, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(noise.sum((-2, -1)), torch.zeros(5, dtype=torch.int64))


def test_invariant_under_a_global_phase_rotation_and_batched_over_leading_axes():
    phase = vortex(8.5, 8.5) - vortex(20.5, 20.5) + vortex(25.5, 4.5, 2)
    charges = winding_numbers(phase)
    stack = torch.stack([phase + angle for angle in torch.linspace(0, 2 * math.pi, 7, dtype=torch.float64)])
    assert torch.equal(winding_numbers(stack), charges.expand(7, -1, -1))


def test_bad_input_is_one_clear_error():
    with pytest.raises(GoldstoneError, match="at least 2 dimensions"):
        winding_numbers(torch.zeros(5))
    with pytest.raises(GoldstoneError, match="torch.angle"):
        winding_numbers(torch.zeros(4, 4, dtype=torch.complex64))


def test_the_amplitude_gate_drops_charges_where_the_field_vanishes():
    """A +-pair in a field of amplitude one keeps its charges; the same pattern where the field is
    a thousandth of the frame's RMS amplitude (phase noise in a dead region) is dropped."""
    pair = vortex(8.5, 8.5) - vortex(8.5, 20.5)
    amplitude = torch.ones(SIZE, SIZE, dtype=torch.float64)
    amplitude[4:13, 14:26] = 1e-3  # the antivortex sits in a region where the field has vanished
    field = torch.polar(amplitude, pair)
    gated = gated_winding_numbers(field, threshold=0.1)
    assert gated[8, 8] == 1 and gated[8, 20] == 0
    torch.testing.assert_close(gated, winding_numbers(pair) * (gated != 0))
    rotated = gated_winding_numbers(field * complex(math.cos(2.0), math.sin(2.0)))
    assert torch.equal(rotated, gated)
    with pytest.raises(GoldstoneError, match="threshold must lie in"):
        gated_winding_numbers(field, threshold=1.0)
    with pytest.raises(GoldstoneError, match="must be complex"):
        gated_winding_numbers(pair)


def moving_frames(steps: int = 10) -> torch.Tensor:
    """Charges (T, H, W): a +1 vortex stepping one plaquette along x each frame (wrapping round the
    torus), and a +-pair created at frame 3 two plaquettes apart that annihilates after frame 6."""
    frames = torch.zeros(steps, SIZE, SIZE, dtype=torch.int8)
    for t in range(steps):
        frames[t, 5, (30 + t) % SIZE] = 1
        if 3 <= t <= 6:
            frames[t, 20, 10], frames[t, 20, 12] = 1, -1
    return frames


def test_tracks_link_a_moving_vortex_and_count_pair_creation_and_annihilation():
    tracks = track_vortices(moving_frames())
    assert tracks.counts.tolist() == [1, 1, 1, 3, 3, 3, 3, 1, 1, 1]
    assert tracks.births.tolist() == [0, 0, 0, 2, 0, 0, 0, 0, 0, 0]
    assert tracks.deaths.tolist() == [0, 0, 0, 0, 0, 0, 2, 0, 0, 0]
    assert sorted(tracks.lifetimes.tolist()) == [4, 4, 10]  # the mover crossed the seam in one track
    assert tracks.censored.tolist() == [True, False, False]
    assert tracks.mean_lifetime() == 4.0


def test_tracks_keep_lattices_and_charges_apart():
    """Two lattices (leading axis) with vortices at the same place never link across; a vortex whose
    charge flips in place is a death and a birth, and one that jumps too far starts a new track."""
    frames = moving_frames(6)
    other = torch.zeros_like(frames)
    other[:3, 5, 31], other[3:, 5, 31] = 1, -1
    jumper = torch.zeros_like(frames)
    jumper[:3, 0, 0], jumper[3:, 16, 16] = 1, 1
    tracks = track_vortices(torch.stack((frames, other, jumper)))
    assert tracks.counts[0] == 3
    assert sorted(tracks.lifetimes.tolist()) == [3] * 6 + [6]
    assert tracks.births.tolist() == [0, 0, 0, 4, 0, 0]
    assert sorted(track_vortices(frames, max_step=0.5).lifetimes.tolist()) == [1] * 6 + [3, 3]


def test_each_track_knows_its_lattice():
    frames = moving_frames(6)
    other = torch.zeros_like(frames)
    other[:3, 5, 31], other[3:, 5, 31] = 1, -1
    tracks = track_vortices(torch.stack((frames, other)))
    by_lattice = {(int(lat), int(life)) for lat, life in zip(tracks.lattice, tracks.lifetimes)}
    assert by_lattice == {(1, 3)} | {(0, int(life)) for life in track_vortices(frames).lifetimes}


def test_the_lifetime_interval_resamples_sequences_and_brackets_the_mean():
    """Sequences i = 0..19 each hold one whole track of lifetime i + 1 (true mean 10.5); the percentile
    bootstrap over sequences brackets the mean, about 2 x 1.96 x 5.77 / sqrt(20) = 5.1 frames wide at
    95 %. Copying each track into a second channel of its sequence adds no information and leaves
    the interval as it was; every sequence alike gives the point; too few sequences give NaN."""
    from goldstone.analysis.vortex_tracks import MIN_CLUSTERS, VortexTracks

    def tracks(lifetimes, channels=1):
        n = len(lifetimes) * channels
        lattice = torch.arange(n)  # flattened (sequence, channel): sequence = lattice // channels
        life = torch.tensor(lifetimes).repeat_interleave(channels)
        return VortexTracks(torch.zeros(3), torch.zeros(3), torch.zeros(3), life, torch.zeros(n, dtype=torch.bool),
                            lattice, (len(lifetimes), channels))

    spread = tracks(list(range(1, 21)))
    low, high = spread.lifetime_interval()
    assert low < spread.mean_lifetime() == 10.5 < high and 4.0 < high - low < 6.2
    assert tracks(list(range(1, 21)), channels=4).lifetime_interval() == (low, high)
    assert spread.lifetime_interval(level=0.5)[1] - spread.lifetime_interval(level=0.5)[0] < high - low
    assert tracks([4] * 20).lifetime_interval() == (4.0, 4.0)
    assert all(math.isnan(v) for v in tracks([3, 5] * ((MIN_CLUSTERS - 1) // 2)).lifetime_interval())


def test_tracking_bad_input_is_one_clear_error():
    with pytest.raises(GoldstoneError, match=r"\(\.\.\., T, H, W\)"):
        track_vortices(torch.zeros(4, 4, dtype=torch.int8))
    with pytest.raises(GoldstoneError, match="max_step"):
        track_vortices(moving_frames(), max_step=0)


def reference_tracks(frames: torch.Tensor, max_step: float) -> tuple[list[int], list[int], list[int]]:
    """Mutual-nearest linking written out vortex by vortex: (sorted lifetimes, births, deaths)."""
    lattices, steps, height, width = frames.shape
    def step_between(a, b):  # shortest periodic displacement from a to b, and its sort key
        dy, dx = ((b[0] - a[0] + height // 2) % height) - height // 2, ((b[1] - a[1] + width // 2) % width) - width // 2
        return (dy * dy + dx * dx, dy, dx)
    lifetimes, births, deaths = [], [0] * steps, [0] * steps
    for lattice in range(lattices):
        alive = {tuple(p): 1 for p in frames[lattice, 0].nonzero().tolist()}
        for t in range(1, steps):
            before = {tuple(p): int(frames[lattice, t - 1][tuple(p)]) for p in frames[lattice, t - 1].nonzero().tolist()}
            after = {tuple(p): int(frames[lattice, t][tuple(p)]) for p in frames[lattice, t].nonzero().tolist()}
            def nearest(p, charge, pool, forward):
                keys = [(step_between(p, q) if forward else step_between(q, p), q) for q, c in pool.items()
                        if c == charge and step_between(p, q)[0] <= max_step ** 2]
                return min(keys)[1] if keys else None
            links = {q: p for q, c in after.items() if (p := nearest(q, c, before, False)) is not None
                     and nearest(p, before[p], after, True) == q}
            survivors = {q: alive[p] + 1 for q, p in links.items()}
            lifetimes += [alive[p] for p in before if p not in links.values()]
            births[t] += len(after) - len(links)
            deaths[t - 1] += len(before) - len(links)
            alive = {**{q: 1 for q in after if q not in links}, **survivors}
        lifetimes += list(alive.values())
    return sorted(lifetimes), births, deaths


@pytest.mark.parametrize("max_step", [1.0, 1.5, 2.3])
def test_tracks_match_a_vortex_by_vortex_reference_on_random_charges(max_step):
    generator = torch.Generator().manual_seed(int(10 * max_step))
    frames = torch.randint(-1, 2, (3, 12, 9, 10), generator=generator, dtype=torch.int8)
    frames *= torch.rand(frames.shape, generator=generator) < 0.15
    tracks = track_vortices(frames, max_step)
    lifetimes, births, deaths = reference_tracks(frames, max_step)
    assert sorted(tracks.lifetimes.tolist()) == lifetimes
    assert tracks.births.tolist() == births and tracks.deaths.tolist() == deaths
