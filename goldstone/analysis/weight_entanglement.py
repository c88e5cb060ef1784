"""Entanglement profiles of a model's weight matrices, or of their change from a reference
(`goldstone entanglement`): the matrices are read from the files (no model is built), profiled
all at once per shape, and set against Page's curve for a random state on the same sites."""

from __future__ import annotations

import fnmatch
import math
from pathlib import Path

import pandas as pd
import torch

from goldstone.core.errors import GoldstoneError
from goldstone.core.weights import check_finite, match_names, read_weights
from goldstone.models.pretrained import minilm_path
from goldstone.observables.entanglement import entanglement_profile, prime_factors
from goldstone.theory.entanglement import page_curve

DEFAULT_PATTERNS = ("*attention.self.query.weight", "*attention.self.value.weight")
"""MiniLM / BERT's W_Q and W_V, the paper's matrices."""


def _folder(source: str | Path) -> Path:
    return minilm_path() if str(source) == "minilm" else Path(source)


def _check_matrices(weights: dict[str, torch.Tensor], names: list[str], source: str | Path) -> None:
    """Refuse, in one line naming `source` and the tensor, a matrix with a side shorter than 2 (no cut
    between its rows and its columns) or with NaN or infinite entries."""
    flat = [n for n in names if min(weights[n].shape) < 2]
    if flat:
        rows, cols = weights[flat[0]].shape
        raise GoldstoneError(f"{source}: {flat[0]!r} is {rows} x {cols}: a profile needs both sides >= 2 (a cut "
                             "between rows and columns); leave it out of --params")
    check_finite({n: weights[n] for n in names}, source)


def weight_profiles(source: str | Path, reference: str | Path | None = None,
                    patterns: tuple[str, ...] = DEFAULT_PATTERNS) -> pd.DataFrame:
    """One row per (parameter, cut): parameter, cut (1 .. n-1), log2_left (log2 of the left
    dimension), entropy (nats), page (Page's mean for a random state on the same sites), and
    whether the row|column cut it is (`centre`). With `reference`, the matrices are W - W_ref.
    A matched matrix that is empty, a vector (1 x n or n x 1: no row|column cut) or not finite is
    refused in one line naming it."""
    weights = read_weights(_folder(source))
    names = [n for n in weights if weights[n].dim() == 2 and any(fnmatch.fnmatch(n, p) for p in patterns)]
    if not names:
        raise GoldstoneError(f"--params {', '.join(patterns)} matches no matrix in {source}; some names: "
                             f"{', '.join(list(weights)[:4])}")
    _check_matrices(weights, names, source)
    if reference is not None:
        base = read_weights(_folder(reference))
        keys = match_names(names, base, f"the reference {reference}")
        wrong = [n for n in names if base[keys[n]].shape != weights[n].shape]
        if wrong:
            raise GoldstoneError(f"parameter {wrong[0]!r} is {tuple(weights[wrong[0]].shape)} in {source} but "
                                 f"{tuple(base[keys[wrong[0]]].shape)} in the reference {reference}")
        check_finite({keys[n]: base[keys[n]] for n in names}, reference)
        matrices = {n: weights[n].double() - base[keys[n]].double() for n in names}
    else:
        matrices = {n: weights[n].double() for n in names}
    rows = []
    by_shape: dict[tuple[int, int], list[str]] = {}
    for n in names:
        by_shape.setdefault(tuple(matrices[n].shape), []).append(n)
    for shape, group in by_shape.items():
        profiles = entanglement_profile(torch.stack([matrices[n] for n in group]))
        dims = prime_factors(shape[0]) + prime_factors(shape[1])
        page = page_curve(dims)
        centre = len(prime_factors(shape[0]))
        for n, profile in zip(group, profiles):
            for k, value in enumerate(profile.tolist(), start=1):
                rows.append({"parameter": n, "cut": k, "log2_left": math.log2(math.prod(dims[:k])),
                             "entropy": value, "page": float(page[k - 1]), "centre": k == centre})
    return pd.DataFrame(rows)


def profile_figure(frame: pd.DataFrame, path: Path, title: str) -> None:
    """Profiles against log2 of the left dimension, one panel per role (the name's last two parts),
    one line per layer, Page's curve dashed."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    from goldstone.core.atomic import write_figure

    roles = frame.parameter.str.split(".").str[-2]
    panels = list(dict.fromkeys(roles))
    fig = Figure(figsize=(4.8 * len(panels), 3.6), constrained_layout=True)
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, role in zip(axes[0], panels):
        part = frame[roles == role]
        for i, (name, rows) in enumerate(part.groupby("parameter", sort=False)):
            ax.plot(rows.log2_left, rows.entropy, "o-", ms=2.5, lw=1, color=colormaps["viridis"](i / max(len(set(
                part.parameter)) - 1, 1)), label=name.split(".")[2] if name.count(".") > 3 else name)
        first = part[part.parameter == part.parameter.iloc[0]]
        ax.plot(first.log2_left, first.page, "k--", lw=1, label="Page (random state)")
        centre = first[first.centre].log2_left.iloc[0]
        ax.axvline(centre, color="grey", ls=":", lw=0.8)
        ax.set(xlabel="log2 of the left dimension (cut position)", ylabel="entanglement entropy (nats)", title=role)
        ax.legend(fontsize=6, title="layer", title_fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(title)
    write_figure(path, fig)
