"""One logging setup: readable lines for a person, JSON lines where the user chose them.

structlog binds context (run id, model version, request id) once and every later line carries it;
standard-library loggers (MLflow, uvicorn, Dagster's libraries) go through the same renderer. A
logged exception keeps its whole traceback in either form.

JSON (`MODELCYCLE_LOG_FORMAT=json`, or `auto` outside the `local` environment) is for a log
pipeline: every line goes to stderr. Console lines are for a person: stderr carries the command's
own voice (modelcycle's loggers, and uvicorn's for `serve`) and third-party errors, while the
libraries' chatter (MLflow's INFO lines, Python warnings) goes to the log file under the home. A
command that prints what happened (all but `serve` and `up`) also keeps modelcycle's INFO lines in
the file; `--verbose` puts everything on the terminal too.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

import structlog

from modelcycle.settings import Settings

# Libraries whose DEBUG lines would drown ours under --verbose.
_QUIET_LIBRARIES = ("alembic", "urllib3", "botocore", "s3fs", "aiobotocore", "numba")
# Loggers that speak for the command: a person running it wants their lines on the terminal.
_OWN_LOGGERS = ("modelcycle", "uvicorn")
_LOG_FILE_BYTES = 10 * 1024 * 1024
_LOG_FILE_BACKUPS = 3


def log_file_path(settings: Settings) -> Path:
    """Where console mode keeps what the terminal does not show."""
    return settings.home / "logs" / "modelcycle.log"


def configure_logging(settings: Settings, *, log_file: Path | None = None) -> None:
    """Configure structlog and the standard library: stderr, and `log_file` in console mode."""
    _quiet_mlflow_defaults()
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and settings.environment != "local"
    )
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    terminal = _TerminalHandler(sys.stderr)
    terminal.setFormatter(_formatter(shared, use_json=use_json, colors=sys.stderr.isatty()))
    handlers: list[logging.Handler] = [terminal]
    if not use_json and level > logging.DEBUG:
        terminal.addFilter(_TerminalFilter())
        if log_file is not None:
            file = _LogFile(log_file)
            file.setFormatter(_formatter(shared, use_json=False, colors=False))
            handlers.append(file)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(True)  # library warnings are log lines like any other
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    # MLflow warns on every model it logs that pip (absent from uv environments) has no version.
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    if "mlflow" in sys.modules:  # imported before this (a test, a Dagster code location)
        route_mlflow_output()


def configure_logging_once(settings: Settings) -> None:
    """Configure logging unless this process already did (the CLI running Dagster in-process)."""
    if not any(isinstance(handler, _TerminalHandler) for handler in logging.getLogger().handlers):
        configure_logging(settings)


def quiet_terminal() -> None:
    """Keep modelcycle's INFO lines off the terminal, for a command that prints what happened.

    They still go to the log file; `--verbose` (DEBUG) keeps them on the terminal.
    """
    for handler in logging.getLogger().handlers:
        for terminal_filter in handler.filters:
            if isinstance(terminal_filter, _TerminalFilter):
                terminal_filter.own_level = logging.WARNING


def route_mlflow_output() -> None:
    """MLflow's own logs through ours, and its prints ("Registered model … already exists") too.

    MLflow writes those prints to a stream of its own that forwards to stderr; pointed at its
    logger instead, they land where the rest of MLflow's INFO lines do (the log file).
    """
    from mlflow.utils import logging_utils

    mlflow_logger = logging.getLogger("mlflow")
    mlflow_logger.handlers.clear()  # MLflow's own stderr handler, installed when it is imported
    mlflow_logger.propagate = True
    mlflow_logger.setLevel(logging.NOTSET)
    logging_utils.MLFLOW_LOGGING_STREAM = _LoggerStream(mlflow_logger)  # type: ignore[assignment]


def _quiet_mlflow_defaults() -> None:
    """MLflow reads this from the environment when it downloads; a user's own setting wins.

    Its loggers are taken over in `route_mlflow_output`, not with MLFLOW_CONFIGURE_LOGGING: the
    variable would reach the MLflow server `modelcycle up` starts, and empty its log file.
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _formatter(
    shared: list[structlog.typing.Processor], *, use_json: bool, colors: bool
) -> logging.Formatter:
    # JSON lines carry an exception as its formatted traceback (a string a log pipeline can show),
    # never the repr of an exc_info tuple; the console renderer prints tracebacks itself.
    rendering: list[structlog.typing.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if use_json
        else [structlog.dev.ConsoleRenderer(colors=colors)]
    )
    return structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        foreign_pre_chain=shared,
    )


class _TerminalHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr, told apart from handlers that tests or Dagster install."""


class _TerminalFilter(logging.Filter):
    """The command's own lines at its level; other libraries' only when something broke."""

    own_level = logging.NOTSET

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".", 1)[0] in _OWN_LOGGERS:
            return record.levelno >= self.own_level
        return record.levelno >= logging.ERROR


class _LogFile(logging.handlers.RotatingFileHandler):
    """The log file, created on its first line; if it cannot be written, one warning, then off."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(path, maxBytes=_LOG_FILE_BYTES, backupCount=_LOG_FILE_BACKUPS, delay=True)

    def _open(self):  # type: ignore[no-untyped-def]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return super()._open()

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging names it
        logging.getLogger().removeHandler(self)
        error = sys.exc_info()[1]
        sys.stderr.write(f"warning: not writing the log file {self.path}: {error}\n")


class _LoggerStream:
    """A write-only stream whose lines become INFO records of `logger`."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self._logger.info(line.strip())
        return len(text)

    def flush(self) -> None:
        pass
