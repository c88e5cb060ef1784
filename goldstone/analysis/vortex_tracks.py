"""Vortex tracks: vortices linked from frame to frame, their lifetimes, births and deaths.

A vortex at frame t + 1 continues a vortex at frame t when the two are each other's nearest
vortex of the same charge, in the same lattice (sequence, channel), within `max_step` lattice
units on the torus (mutual nearest neighbours, the usual rule of particle tracking; equal
distances go to the displacement first in (distance, dy, dx) order). Vortices left unmatched start
a track (a birth, on a torus normally a vortex-antivortex pair creation) or end one (a death:
annihilation or a core leaving the gate). Each frame links all plaquettes of all lattices at once.
"""

from __future__ import annotations

import dataclasses

import torch

from goldstone.core.errors import GoldstoneError


@dataclasses.dataclass
class VortexTracks:
    counts: torch.Tensor     # (T,) vortices (either sign) per frame, all lattices together
    births: torch.Tensor     # (T,) tracks starting at frame t (0 at t = 0: those are not births)
    deaths: torch.Tensor     # (T,) tracks ending at frame t (0 at the last frame)
    lifetimes: torch.Tensor  # (tracks,) frames each track lasts
    censored: torch.Tensor   # (tracks,) bool: the track is present at the first or the last frame
    lattice: torch.Tensor    # (tracks,) the lattice (flattened leading index) the track lives in
    lattices: tuple[int, ...] = ()  # the leading shape of the charges, e.g. (sequences, channels)

    def mean_lifetime(self) -> float:
        """Mean lifetime (frames) of the tracks born and dead inside the window; NaN if none."""
        whole = self.lifetimes[~self.censored]
        return float(whole.double().mean()) if len(whole) else float("nan")

    def lifetime_interval(self, level: float = 0.95, resamples: int = 2000, seed: int = 0,
                          axis: int = 0) -> tuple[float, float]:
        """A percentile bootstrap interval of `mean_lifetime` over the entries of leading axis `axis`
        (default the first, the sequences: the channels of one sequence are coupled by the kernel and
        share its input, so their tracks are not independent). Each resample draws those entries with
        replacement and takes sum(lifetimes) / tracks over their whole tracks; resamples that hold no
        whole track are left out. The interval covers the sequences of this network, not seeds. NaN,
        NaN with fewer than `MIN_CLUSTERS` entries or no whole track."""
        whole = ~self.censored
        clusters = self.lattices[axis] if self.lattices else 0
        if clusters < MIN_CLUSTERS or not whole.any():
            return float("nan"), float("nan")
        index = torch.unravel_index(self.lattice[whole], self.lattices)[axis]
        total = torch.zeros(clusters, dtype=torch.float64).index_add_(0, index, self.lifetimes[whole].double())
        count = torch.bincount(index, minlength=clusters).double()
        draws = torch.randint(clusters, (resamples, clusters), generator=torch.Generator().manual_seed(seed))
        means = total[draws].sum(1) / count[draws].sum(1)
        low, high = torch.nanquantile(means, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
        return float(low), float(high)


MIN_CLUSTERS = 5
"""Fewest independent entries (sequences) a bootstrap interval is given for."""


def track_vortices(charges: torch.Tensor, max_step: float = 1.5) -> VortexTracks:
    """Link the vortices of `charges` (..., T, H, W) (integer, from `winding_numbers`) over T;
    leading axes are separate lattices.

    Matching works on the lattice itself: the K displacements within `max_step`, nearest first,
    are K shifted copies of a frame, so each vortex's nearest same-charge partner in the next
    (previous) frame is the first shift that agrees with it, for all plaquettes and lattices at once.
    """
    if charges.dim() < 3:
        raise GoldstoneError(f"charges must be (..., T, H, W), got shape {tuple(charges.shape)}")
    if not 0 < max_step <= MAX_STEP:
        raise GoldstoneError(f"max_step must lie in (0, {MAX_STEP}] lattice units, got {max_step}")
    frames = charges.reshape(-1, *charges.shape[-3:]).transpose(0, 1)  # (T, lattices, H, W)
    offsets = _displacements(max_step, charges.shape[-2:])
    steps = frames.shape[0]
    counts = frames.ne(0).sum((1, 2, 3))
    births, deaths = torch.zeros(steps, dtype=torch.long), torch.zeros(steps, dtype=torch.long)
    ids = torch.full(frames.shape, -1, dtype=torch.long)
    present = frames[0] != 0
    ids[0][present] = torch.arange(int(present.sum()))
    tracks = int(present.sum())
    for t in range(1, steps):
        matched, source = _mutual_nearest(frames[t - 1], frames[t], offsets)
        ids[t][matched] = _shifted(ids[t - 1], offsets)[source[matched], matched]
        new = (frames[t] != 0) & ~matched
        births[t] = int(new.sum())
        deaths[t - 1] = int(counts[t - 1]) - int(matched.sum())
        ids[t][new] = torch.arange(tracks, tracks + births[t])
        tracks += int(births[t])
    lifetimes = torch.bincount(ids[ids >= 0], minlength=tracks)
    censored = torch.zeros(tracks, dtype=torch.bool)
    censored[ids[0][ids[0] >= 0]] = True
    censored[ids[-1][ids[-1] >= 0]] = True
    lattice = torch.zeros(tracks, dtype=torch.long)
    seen = ids >= 0
    lattice[ids[seen]] = torch.arange(frames.shape[1]).view(1, -1, 1, 1).expand_as(ids)[seen]
    return VortexTracks(counts, births, deaths, lifetimes, censored, lattice, tuple(charges.shape[:-3]))


MAX_STEP = 4.0
"""The largest `max_step`: (2 x 4 + 1)^2 shifted copies of a frame at most."""


def _displacements(max_step: float, size: torch.Size) -> list[tuple[int, int]]:
    """Displacements (dy, dx) of length at most `max_step`, nearest first, one per distinct shift of
    the (H, W) torus."""
    reach = int(max_step)
    candidates = sorted(((dy * dy + dx * dx, dy, dx) for dy in range(-reach, reach + 1)
                         for dx in range(-reach, reach + 1) if dy * dy + dx * dx <= max_step * max_step))
    distinct = {}
    for _, dy, dx in candidates:
        distinct.setdefault((dy % size[0], dx % size[1]), (dy, dx))
    return list(distinct.values())


def _shifted(grid: torch.Tensor, offsets: list[tuple[int, int]]) -> torch.Tensor:
    """(K, lattices, H, W): copy k holds at plaquette p the value of `grid` at p - offsets[k]."""
    return torch.stack([grid.roll(offset, (-2, -1)) for offset in offsets])


def _mutual_nearest(before: torch.Tensor, after: torch.Tensor,
                    offsets: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """For frame `after` (lattices, H, W): which vortices continue one of `before` (each the other's
    nearest same-charge vortex within the displacements), and the index k of that displacement."""
    forward = _shifted(before, offsets) == after  # k: before at p - offset_k has after's charge at p
    backward = _shifted(after, [(-dy, -dx) for dy, dx in offsets]) == before  # k: after at p + offset_k
    nearest_before = forward.int().argmax(0)  # first (nearest) agreeing displacement
    has_before = forward.any(0) & (after != 0)
    nearest_after = backward.int().argmax(0)
    # mutual: the vortex at q = p - offset_k in `before` has offset_k as its own nearest step forward
    back_at_source = _shifted(nearest_after, offsets).gather(0, nearest_before[None])[0]
    matched = has_before & (back_at_source == nearest_before)
    return matched, nearest_before
