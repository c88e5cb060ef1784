"""Optional dependencies: imported where they are used, with a one-line error naming the extra.

The base install (``pip install goldstone``) runs the Goldstone-modes experiments and the demo;
the ``hf`` extra adds transformers, tokenizers, peft, conllu and ruptures (syntax, single-node),
the ``ray`` extra adds Ray (sweeps on a cluster).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from importlib import metadata
from types import ModuleType
from urllib.parse import unquote, urlparse

from goldstone.core.errors import GoldstoneError

EXTRAS: dict[str, tuple[str, ...]] = {
    "hf": ("transformers", "tokenizers", "conllu", "ruptures"),
    "ray": ("ray",),
}
"""The modules each extra provides that goldstone imports (peft and the MiniLM package are
checked where they are used)."""


class MissingExtraError(GoldstoneError):
    """An optional dependency is not installed."""


def _editable_checkout() -> str | None:
    """The checkout folder when goldstone was installed with ``pip install -e``, else None."""
    try:
        text = metadata.distribution("goldstone").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    info = json.loads(text) if text else {}
    if not info.get("dir_info", {}).get("editable"):
        return None
    return unquote(urlparse(info.get("url", "")).path) or None


def install_hint(extra: str) -> str:
    """The pip command that adds `extra` to this install."""
    checkout = _editable_checkout()
    if checkout:
        return f"pip install -e '.[{extra}]' (in {checkout})"
    return f"pip install 'goldstone[{extra}]'"


def missing(extra: str) -> list[str]:
    """The modules of `extra` that are not installed."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def require_extra(extra: str, purpose: str) -> None:
    """Raise `MissingExtraError` unless every module of `extra` is installed."""
    absent = missing(extra)
    if absent:
        raise MissingExtraError(f"{purpose} needs {', '.join(absent)} (the {extra!r} extra): {install_hint(extra)}")


def optional_import(module: str, extra: str, purpose: str) -> ModuleType:
    """``import module``, or a `MissingExtraError` saying which extra to install for `purpose`."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] != module.split(".")[0]:
            raise
        raise MissingExtraError(f"{purpose} needs {err.name} (the {extra!r} extra): {install_hint(extra)}") from err
