"""One logging setup: readable lines on a terminal, JSON lines in production.

structlog binds context (run id, model version, request id) once and every later line carries it;
standard-library loggers (MLflow, uvicorn) go through the same renderer. A logged exception keeps
its whole traceback in either form.
"""

from __future__ import annotations

import logging
import sys

import structlog

from modelcycle.settings import Settings

_QUIET_LIBRARIES = ("mlflow", "alembic", "urllib3", "botocore", "s3fs", "aiobotocore", "numba")


def configure_logging(settings: Settings) -> None:
    """Configure structlog and the standard library to write to stderr."""
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto"
        and (settings.environment != "local" or not sys.stderr.isatty())
    )
    # JSON lines carry an exception as its formatted traceback (a string a log pipeline can show),
    # never the repr of an exc_info tuple; the console renderer prints tracebacks itself.
    rendering: list[structlog.typing.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if use_json
        else [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    )
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
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    # MLflow warns on every model it logs that pip (absent from uv environments) has no version.
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
