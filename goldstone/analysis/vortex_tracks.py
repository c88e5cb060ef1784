"""Vortex tracks: vortices linked from frame to frame, their lifetimes, births and deaths.

A vortex at frame t + 1 continues a vortex at frame t when the two are each other's nearest
vortex of the same charge, in the same lattice (sequence, channel), within `max_step` lattice
units on the torus (mutual nearest neighbours, the usual rule of particle tracking). Vortices left
unmatched start a track (a birth, on a torus normally a vortex-antivortex pair creation) or end
one (a death: annihilation or a core leaving the gate). Each frame links all lattices at once.
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

    def mean_lifetime(self) -> float:
        """Mean lifetime (frames) of the tracks born and dead inside the window; NaN if none."""
        whole = self.lifetimes[~self.censored]
        return float(whole.double().mean()) if len(whole) else float("nan")


def track_vortices(charges: torch.Tensor, max_step: float = 1.5) -> VortexTracks:
    """Link the vortices of `charges` (..., T, H, W) (integer, from `winding_numbers`) over T;
    leading axes are separate lattices."""
    if charges.dim() < 3:
        raise GoldstoneError(f"charges must be (..., T, H, W), got shape {tuple(charges.shape)}")
    if max_step <= 0:
        raise GoldstoneError(f"max_step must be > 0, got {max_step}")
    frames = charges.flatten(0, -4).transpose(0, 1) if charges.dim() > 3 else charges.unsqueeze(1)
    size = torch.tensor(charges.shape[-2:], dtype=torch.float64)
    steps = frames.shape[0]
    counts, births, deaths = (torch.zeros(steps, dtype=torch.long) for _ in range(3))
    ids: list[torch.Tensor] = []
    previous, previous_ids, tracks = None, torch.zeros(0, dtype=torch.long), 0
    for t in range(steps):
        lattice, y, x = frames[t].nonzero(as_tuple=True)
        current = (lattice, torch.stack((y, x), 1).double(), frames[t][lattice, y, x])
        counts[t] = len(lattice)
        current_ids = torch.full((len(lattice),), -1, dtype=torch.long)
        if previous is not None and len(lattice) and len(previous[0]):
            before, after = _mutual_nearest(previous, current, size, max_step)
            current_ids[after] = previous_ids[before]
            deaths[t - 1] = len(previous_ids) - len(before)
        elif previous is not None:
            deaths[t - 1] = len(previous_ids)
        new = current_ids < 0
        births[t] = int(new.sum()) if t else 0
        current_ids[new] = torch.arange(tracks, tracks + int(new.sum()))
        tracks += int(new.sum())
        ids.append(current_ids)
        previous, previous_ids = current, current_ids
    every = torch.cat(ids)
    lifetimes = torch.bincount(every, minlength=tracks)
    censored = torch.zeros(tracks, dtype=torch.bool)
    censored[ids[0]] = True
    censored[ids[-1]] = True
    return VortexTracks(counts, births, deaths, lifetimes, censored)


def _mutual_nearest(previous, current, size: torch.Tensor, max_step: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (into previous, into current) of the pairs that are each other's nearest allowed
    partner: same lattice, same charge, periodic distance at most `max_step`."""
    (lattice_a, pos_a, charge_a), (lattice_b, pos_b, charge_b) = previous, current
    delta = (pos_a[:, None] - pos_b[None]).abs()
    distance = torch.minimum(delta, size - delta).norm(dim=-1)
    allowed = (lattice_a[:, None] == lattice_b[None]) & (charge_a[:, None] == charge_b[None]) & (distance <= max_step)
    distance = distance.masked_fill(~allowed, float("inf"))
    forward, backward = distance.argmin(1), distance.argmin(0)
    before = torch.arange(len(lattice_a))
    mutual = (backward[forward] == before) & allowed[before, forward]
    return before[mutual], forward[mutual]
