"""Errors users see, and the one exit-code table. Each error names the file, field or value at fault; the CLI
turns it into its exit code. The README's "Exit codes" line lists the same table (a test compares them)."""

from __future__ import annotations

# The exit codes of every molremote command, in one place. The error classes below carry theirs from here.
EXIT_OK = 0
EXIT_ERROR = 1  # a failure without a more specific code (e.g. `doctor` found a problem)
EXIT_USAGE = 2  # bad experiment, option or command line (Typer's usage errors exit 2 as well)
EXIT_DATA = 3
EXIT_CHECKPOINT = 4
EXIT_STORE = 5
EXIT_BACKEND = 6
EXIT_SUBMISSION = 7
EXIT_CONFIG = 8
EXIT_RUN_BUSY = 9  # another process (a trainer, a pull) holds the run folder's lock
EXIT_MANIFEST = 10  # a run's manifest.json cannot be read (kept; `train --repair` rebuilds it)
EXIT_INCOMPLETE = 75  # EX_TEMPFAIL: stopped at a deadline or signal, resumable; backends chain/requeue on it
EXIT_INTERRUPTED = 130  # Ctrl-C outside the trainer (128 + SIGINT)

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "done",
    EXIT_USAGE: "bad experiment or option",
    EXIT_DATA: "data missing",
    EXIT_CHECKPOINT: "no usable checkpoint",
    EXIT_STORE: "store",
    EXIT_BACKEND: "backend",
    EXIT_SUBMISSION: "submission format",
    EXIT_CONFIG: "settings",
    EXIT_RUN_BUSY: "run busy",
    EXIT_MANIFEST: "corrupt manifest",
    EXIT_INCOMPLETE: "stopped early but resumable",
}


class MolremoteError(Exception):
    """Base: a clear message for the user, no traceback, non-zero exit."""

    exit_code = EXIT_ERROR


class ExperimentError(MolremoteError):
    """A problem with an experiment definition: names the file and the field."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file, self.field = file, field
        where = ", ".join(x for x in (f"file {file}" if file else "", f"field '{field}'" if field else "") if x)
        super().__init__(f"{where}: {message}" if where else message)


class UsageError(MolremoteError):
    """A command-line option has a value the command cannot use (Typer's own usage errors exit 2 the same way):
    names the option and the values it takes."""

    exit_code = EXIT_USAGE


class DataError(MolremoteError):
    """Data missing or malformed: names the file and says how to get or fix it."""

    exit_code = EXIT_DATA


class CheckpointError(MolremoteError):
    """No usable checkpoint where one was expected (never silently retrain over a run)."""

    exit_code = EXIT_CHECKPOINT


class StoreError(MolremoteError):
    exit_code = EXIT_STORE


class BackendError(MolremoteError):
    exit_code = EXIT_BACKEND


class SubmissionError(MolremoteError):
    """A submission or prediction file fails the format check: names the file and what is wrong."""

    exit_code = EXIT_SUBMISSION


class ConfigError(MolremoteError):
    """molremote.toml or an environment override is wrong: names the file (or variable) and the key."""

    exit_code = EXIT_CONFIG


class RunBusyError(MolremoteError):
    """Another process (a trainer, a pull) holds the run folder's lock: one writer per run."""

    exit_code = EXIT_RUN_BUSY


class ManifestError(MolremoteError):
    """A run's manifest.json is not readable JSON: named, kept, never silently rebuilt."""

    exit_code = EXIT_MANIFEST
