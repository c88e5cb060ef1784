"""Typed observable results: dataclasses of named tensors and scalars that become tidy rows.

A tensor field declares the names of its axes with `dims(...)`; `to_frame` then turns every
entry into one row ``(step, observable, metric, <axis columns>, value)``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

from goldstone.core.atomic import write_safetensors


def dims(*names: str) -> Any:
    """A result field holding a tensor whose axes are called `names` (e.g. ``dims("layer")``)."""
    return dataclasses.field(default=None, metadata={"dims": names})


def meta(default_factory: Any = list) -> Any:
    """A result field of metadata (e.g. label names): saved with the result, not turned into rows."""
    return dataclasses.field(default_factory=default_factory, metadata={"meta": True})


@dataclasses.dataclass
class Result:
    """Base of every observable's result. Subclasses set `observable` and declare fields."""

    observable: ClassVar[str] = "result"

    def axis_labels(self) -> dict[str, list[str]]:
        """Names for the entries of an axis (e.g. relation labels); rows then carry the name."""
        return {}

    def metrics(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_frame(self, step: int | None = None) -> pd.DataFrame:
        """Long-form rows: one per scalar, one per tensor entry with its axis indices."""
        frames, labels = [], self.axis_labels()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or f.metadata.get("meta"):
                continue
            array = value.detach().cpu().double().numpy() if torch.is_tensor(value) else np.asarray(value, float)
            axes = f.metadata.get("dims", ())
            if array.ndim != len(axes):
                raise ValueError(f"{type(self).__name__}.{f.name}: {array.ndim}-d value but dims {axes}")
            columns = {"observable": self.observable, "metric": f.name}
            if axes:
                index = np.indices(array.shape).reshape(array.ndim, -1)
                columns.update({axis: np.asarray(labels[axis], dtype=object)[index[i]] if axis in labels else index[i]
                                for i, axis in enumerate(axes)})
            columns["value"] = array.reshape(-1)
            frames.append(pd.DataFrame(columns))
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if step is not None:
            frame.insert(0, "step", step)
        return frame

    def table(self) -> pd.DataFrame:
        """The wide view of `to_frame`: one row per index entry (e.g. per layer), one column per
        metric; a result of scalars is one row."""
        frame = self.to_frame()
        index = [c for c in frame.columns if c not in ("observable", "metric", "value")]
        if not index:
            return frame.set_index("metric").value.to_frame().T.reset_index(drop=True).rename_axis(columns=None)
        wide = frame.pivot_table(index=index, columns="metric", values="value", sort=False, dropna=False)
        return wide[[m for m in frame.metric.unique()]].reset_index().rename_axis(columns=None)

    def save(self, path: str | Path) -> None:
        """Tensors to safetensors; the class name and scalar fields in its metadata."""
        tensors, scalars = {}, {}
        for name, value in self.metrics().items():
            if torch.is_tensor(value):
                tensors[name] = value
            elif value is not None:
                scalars[name] = value
        write_safetensors(path, tensors, metadata={"result": type(self).__name__,
                                                   "scalars": json.dumps(scalars)})

    @classmethod
    def load(cls, path: str | Path) -> Result:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            scalars = json.loads(f.metadata()["scalars"])
        return cls(**load_file(str(path)), **scalars)
