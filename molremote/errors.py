"""Errors users see. Each names the file, field or value at fault; the CLI turns them into exit codes."""
from __future__ import annotations


class MolremoteError(Exception):
    """Base: a clear message for the user, no traceback, non-zero exit."""

    exit_code = 1


class ExperimentError(MolremoteError):
    """A problem with an experiment definition: names the file and the field."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file, self.field = file, field
        where = ", ".join(x for x in (f"file {file}" if file else "", f"field '{field}'" if field else "") if x)
        super().__init__(f"{where}: {message}" if where else message)


class DataError(MolremoteError):
    """Data missing or malformed: names the file and says how to get or fix it."""

    exit_code = 3


class CheckpointError(MolremoteError):
    """No usable checkpoint where one was expected (never silently retrain over a run)."""

    exit_code = 4


class StoreError(MolremoteError):
    exit_code = 5


class BackendError(MolremoteError):
    exit_code = 6


class SubmissionError(MolremoteError):
    """A submission or prediction file fails the format check: names the file and what is wrong."""

    exit_code = 7


class ConfigError(MolremoteError):
    """molremote.toml or an environment override is wrong: names the file (or variable) and the key."""

    exit_code = 8


class RunBusyError(MolremoteError):
    """Another process (a trainer, a pull) holds the run folder's lock: one writer per run."""

    exit_code = 9


class ManifestError(MolremoteError):
    """A run's manifest.json is not readable JSON: named, kept, never silently rebuilt."""

    exit_code = 10
