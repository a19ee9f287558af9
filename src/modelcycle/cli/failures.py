"""What the CLI says when a command fails: one line and an exit code, the traceback kept.

A `ModelcycleError` carries its own message and exit code. Errors of the environment that the core
lets through (a folder or file the system refuses, a Parquet file that is not one, a database that
refuses) are the user's to fix too: one line naming the problem, the storage exit code. Anything
else is a bug in modelcycle: "internal error", and its traceback written to a file. Every traceback
is also logged at DEBUG, so `--verbose` (or MODELCYCLE_LOG_LEVEL=DEBUG) prints it.
"""

from __future__ import annotations

import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import structlog

from modelcycle.cli.context import stderr
from modelcycle.errors import ModelcycleError, StorageError

log = structlog.get_logger(__name__)

INTERNAL_ERROR_EXIT_CODE = 70  # EX_SOFTWARE in sysexits.h: not the user's fault
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as the shell reports Ctrl-C

# Every exit code a command can end with, and what it means: `--help` and the README list these.
EXIT_CODES = (
    (0, "success"),
    (1, "a check found a problem (alerts check, monitor daily, db current)"),
    (2, "invalid input: a wrong option, date, file or setting"),
    (3, "the data a command needs is not there (a day's logs, a model)"),
    (4, "storage: a folder, file, object store or database refused"),
    (5, "the MLflow tracking server or registry"),
    (6, "a trained model failed a check that must pass before registration"),
    (7, "the monitoring store's schema is out of date: modelcycle db upgrade"),
    (8, "up/backfill: a service did not start, or Dagster refused"),
    (9, "not permitted: the acting user's role, or their own release request"),
    (10, "conflict: a release already decided, or promoting an unapproved one"),
    (INTERNAL_ERROR_EXIT_CODE, "internal error: a bug in modelcycle (traceback in a file)"),
    (INTERRUPTED_EXIT_CODE, "interrupted (Ctrl-C)"),
)


def exit_codes_epilog() -> str:
    """The exit codes as `--help` prints them, one a line (click keeps a `\\b` block as is)."""
    lines = [f"  {code:<3} {meaning}" for code, meaning in EXIT_CODES]
    return "\b\nExit codes:\n" + "\n".join(lines)


# Exception bases of libraries that read and write the user's data, with what to call them. Looked
# up in sys.modules: an exception of a library never imported cannot occur, and importing DuckDB or
# SQLAlchemy only to recognise their errors would slow every command down.
_DATA_LIBRARY_ERRORS = (
    ("pyarrow", "ArrowException", "cannot read or write Arrow/Parquet data"),
    ("duckdb", "Error", "DuckDB"),
    ("sqlalchemy.exc", "SQLAlchemyError", "database"),
)


@dataclass(frozen=True)
class Failure:
    """The one line a failed command prints, and its exit code."""

    code: int
    message: str
    internal: bool = False


def report(error: Exception) -> int:
    """Log the traceback at DEBUG, print the failure's one line, return its exit code."""
    log.debug("the traceback behind the error", exc_info=error)
    failure = describe(error)
    if not failure.internal:
        stderr.print(f"[red]error:[/red] {failure.message}", highlight=False, soft_wrap=True)
        return failure.code
    written = _write_traceback(error)
    if written is None:  # nowhere to write it: print it rather than lose it
        stderr.print("".join(traceback.format_exception(error)), highlight=False, markup=False)
        where = "its traceback is above"
    else:
        where = f"its traceback is in {written} (rerun with --verbose to print it)"
    stderr.print(
        f"[red]internal error:[/red] {failure.message}; a bug in modelcycle: {where}",
        highlight=False,
        soft_wrap=True,
    )
    return failure.code


def describe(error: Exception) -> Failure:
    """The user's error (domain or environment), or an internal one."""
    if isinstance(error, ModelcycleError):
        return Failure(error.exit_code, str(error))
    if isinstance(error, OSError):
        return Failure(StorageError.exit_code, _describe_os_error(error))
    for module_name, base_name, what in _DATA_LIBRARY_ERRORS:
        module = sys.modules.get(module_name)
        base = getattr(module, base_name, None)
        if isinstance(base, type) and isinstance(error, base):
            return Failure(StorageError.exit_code, f"{what}: {_first_line(error)}")
    return Failure(
        INTERNAL_ERROR_EXIT_CODE, f"{type(error).__name__}: {_first_line(error)}", internal=True
    )


def _describe_os_error(error: OSError) -> str:
    """`PATH: reason`, like the shell's own tools; the reason alone when no path is involved."""
    reason = error.strerror or _first_line(error)
    names = [str(name) for name in (error.filename, error.filename2) if name is not None]
    return f"{' → '.join(names)}: {reason}" if names else reason


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(error).__name__


def _write_traceback(error: BaseException) -> Path | None:
    try:
        with tempfile.NamedTemporaryFile(
            "w", prefix="modelcycle-traceback-", suffix=".txt", delete=False
        ) as handle:
            handle.write("".join(traceback.format_exception(error)))
    except OSError:
        return None
    return Path(handle.name)
