"""Progress that tells what is happening: a labelled bar per long step on a terminal, plain log
lines (start, every 30 s, end) when output is not a terminal, so that ``goldstone demo > log`` is
not silent; ``quiet=True`` turns both off. Everything goes to stderr: stdout keeps the results.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.table import Column
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")
LOG_EVERY = 30.0
"""Seconds between two plain log lines of one bar."""

console = Console(stderr=True, highlight=False)


HF_BARS = "HF_HUB_DISABLE_PROGRESS_BARS"


def _library_bars(enabled: bool) -> None:
    hub_utils, hub_tqdm = sys.modules.get("huggingface_hub.utils"), sys.modules.get("huggingface_hub.utils.tqdm")
    if enabled and getattr(hub_tqdm, HF_BARS, None) is True:
        return  # huggingface_hub was first imported inside a quiet run: it froze our "1" and refuses (with a warning)
    if "transformers.utils.logging" in sys.modules:  # it switches huggingface_hub's bars too
        logging = sys.modules["transformers.utils.logging"]
        logging.enable_progress_bar() if enabled else logging.disable_progress_bar()
    elif hub_utils is not None:  # loaded lazily: the package may be imported without its utils
        hub_utils.enable_progress_bars() if enabled else hub_utils.disable_progress_bars()


@contextlib.contextmanager
def library_bars_off(active: bool = True) -> Iterator[None]:
    """Inside the context, no progress bars from transformers or huggingface_hub (for --quiet):
    through the environment for modules imported inside, directly for those imported before.
    Both are put back afterwards, so a quiet run leaves the session (and child processes) as it was."""
    if not active:
        yield
        return
    before = os.environ.get(HF_BARS)
    os.environ[HF_BARS] = "1"
    _library_bars(False)
    try:
        yield
    finally:
        if before is None:
            del os.environ[HF_BARS]
            _library_bars(True)
        else:
            os.environ[HF_BARS] = before


def log(message: str, quiet: bool = False) -> None:
    """One line on stderr (time-stamped when stderr is not a terminal)."""
    if quiet:
        return
    if console.is_terminal:
        console.print(message, markup=False)
    else:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def stage(title: str, quiet: bool = False) -> Iterator[None]:
    """A named stage (e.g. "demo 2/3: deep MLP sweep"): a line when it starts and when it ends."""
    log(f"{title} ...", quiet)
    start = time.perf_counter()
    yield
    log(f"{title}: done in {time.perf_counter() - start:.1f} s", quiet)


def bar_columns() -> list:
    """A bar's columns: on a narrow terminal the description gives way (ellipsis) and the bar
    shrinks, while the count, the elapsed time and the ETA stay whole."""
    whole = dict(no_wrap=True, overflow="ignore")
    return [TextColumn("{task.description}", table_column=Column(ratio=3, no_wrap=True, overflow="ellipsis")),
            BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=10)),
            TextColumn("{task.fields[count]}", table_column=Column(**whole)),
            TimeElapsedColumn(table_column=Column(min_width=7, **whole)), TextColumn("eta", table_column=Column(**whole)),
            TimeRemainingColumn(table_column=Column(min_width=7, **whole))]


class Bar:
    """A labelled bar of `total` units (e.g. steps, sentences, sweep points) that may advance by
    fractions; `unit` names them. Draws nothing when quiet or when `total` is 0."""

    def __init__(self, description: str, total: float, unit: str = "", quiet: bool = False):
        self.description, self.total, self.unit = description, total, unit
        self.active = not quiet and total > 0
        self.completed = 0.0
        self._start = self._logged = 0.0
        self._rich: Progress | None = None

    def _count(self) -> str:
        done = f"{self.completed:.1f}" if self.completed % 1 else f"{self.completed:.0f}"
        return f"{done}/{self.total:g}{' ' + self.unit if self.unit else ''}"

    def __enter__(self) -> Bar:
        if not self.active:
            return self
        self._start = self._logged = time.perf_counter()
        if console.is_terminal:
            self._rich = Progress(*bar_columns(), console=console, expand=True)
            self._rich.start()
            self._task = self._rich.add_task(self.description, total=self.total, count=self._count())
        else:
            log(f"{self.description}: 0/{self.total:g}{' ' + self.unit if self.unit else ''}")
        return self

    def update(self, completed: float) -> None:
        if not self.active:
            return
        self.completed = min(float(completed), float(self.total))
        if self._rich is not None:
            self._rich.update(self._task, completed=self.completed, count=self._count())
        elif time.perf_counter() - self._logged >= LOG_EVERY:
            self._logged = time.perf_counter()
            log(f"{self.description}: {self._count()}")

    def describe(self, text: str) -> None:
        """Say what is being done now (a terminal's bar shows it; log lines keep the description)."""
        if self._rich is not None:
            self._rich.update(self._task, description=text)

    def __exit__(self, *exc: object) -> None:
        if not self.active:
            return
        if self._rich is not None:
            self._rich.stop()
        elif exc[0] is None:
            log(f"{self.description}: {self._count()} in {time.perf_counter() - self._start:.1f} s")


def progress(items: Iterable[T], description: str, quiet: bool = False, total: int | None = None,
             unit: str = "", report: Callable[[int, int], None] | None = None) -> Iterator[T]:
    """Iterate `items` behind a `Bar`; `report(done, total)` (if given) is called after every item."""
    total = len(items) if total is None else total  # type: ignore[arg-type]
    with Bar(description, total, unit, quiet) as bar:
        for done, item in enumerate(items, 1):
            yield item
            bar.update(done)
            if report is not None:
                report(done, total)
