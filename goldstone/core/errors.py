"""Errors that reach the user as one clear line (the CLI turns them into exit code 2)."""


class GoldstoneError(Exception):
    """A user-facing error: bad input, a refused action, a corrupt file."""


class ConfigError(GoldstoneError):
    """A configuration key, value or file at fault; the message names it."""


class RunFolderError(GoldstoneError):
    """A run or sweep folder that cannot be used as asked (different run, no run, corrupt)."""


class FolderInUseError(RunFolderError):
    """Another process holds the folder's lock (a run or sweep writing there)."""


class DivergedError(GoldstoneError):
    """Training stopped: the loss became NaN or infinite at `step` (no checkpoint of it was written)."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step
