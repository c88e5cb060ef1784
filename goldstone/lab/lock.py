"""One process at a time per run or sweep folder: an exclusive `flock` on ``.goldstone.lock``
inside it, released when the process ends (even by SIGKILL); a second process gets a one-line
error naming the PID that holds the folder."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from goldstone.core.errors import FolderInUseError, GoldstoneError, RunFolderError

LOCK = ".goldstone.lock"


def foreign_entries(folder: Path) -> list[Path]:
    """What a folder holds besides goldstone's lock file."""
    return [p for p in folder.iterdir() if p.name != LOCK] if folder.is_dir() else []


def check_output_folder(folder: Path) -> None:
    """An output folder must be a folder (or not exist yet), under folders, and writable."""
    for parent in [folder, *folder.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise RunFolderError(f"--out {folder}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise RunFolderError(f"--out {folder}: {parent} is not writable")
            return


@contextlib.contextmanager
def claimed_folder(folder: Path) -> Iterator[None]:
    """Check `folder` as an output folder and hold its lock; a `GoldstoneError` inside the context
    (a refusal, bad input) removes the folder again if this call made it and nothing was written there.
    A folder goldstone held before (its lock file is there) first loses what a killed writer left."""
    check_output_folder(folder)
    created = not folder.exists()
    ours = (folder / LOCK).is_file()
    try:
        with folder_lock(folder):
            if ours:
                remove_leftovers(folder)
            yield
    except GoldstoneError:
        if created and not foreign_entries(folder):
            shutil.rmtree(folder, ignore_errors=True)
        raise


def remove_leftovers(folder: Path) -> None:
    """Delete the temporary files and folders (".name.XXXX.tmp") a killed writer left in `folder` and
    its subfolders, except subfolders with a lock of their own (a sweep's runs: claimed one by one)."""
    for entry in folder.iterdir():
        leftover = entry.name.startswith(".") and entry.name.endswith(".tmp")
        if leftover and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        elif leftover:
            entry.unlink(missing_ok=True)
        elif entry.is_dir() and not entry.is_symlink() and not (entry / LOCK).exists():
            remove_leftovers(entry)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the folder's lock for the duration of the context (creating the folder if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    fresh = not (folder / LOCK).exists()
    handle = open(folder / LOCK, "a+")
    held = False
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise FolderInUseError(f"{folder} is in use by PID {holder}; wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        held = True
        yield
    except BaseException:
        if held and fresh:  # refused or failed where no lock file was before: leave the folder as it was
            (folder / LOCK).unlink(missing_ok=True)
        raise
    finally:
        handle.close()  # closing releases the lock
