"""The `modelcycle` application: commands, and failures turned into one line and an exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from modelcycle.cli.alerts import alerts_app
from modelcycle.cli.context import build_settings, stderr
from modelcycle.cli.db import db_app
from modelcycle.cli.demo import demo
from modelcycle.cli.failures import report
from modelcycle.cli.ingest import ingest
from modelcycle.cli.models import models_app
from modelcycle.cli.monitor import evaluate, monitor_app, score
from modelcycle.cli.serve import serve
from modelcycle.cli.simulate import simulate
from modelcycle.cli.train import train
from modelcycle.cli.up import backfill, up
from modelcycle.cli.users import users_app
from modelcycle.observability import configure_logging, log_file_path

app = typer.Typer(
    name="modelcycle",
    help="The whole life of a machine-learning model, from raw device logs to registered models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Log at DEBUG (over MODELCYCLE_LOG_LEVEL); a failure prints its traceback.",
        ),
    ] = False,
) -> None:
    """Settings come from MODELCYCLE_* environment variables (see docs/configuration.md)."""
    settings = build_settings()
    if verbose:
        settings = settings.model_copy(update={"log_level": "DEBUG"})
    configure_logging(settings, log_file=log_file_path(settings))
    ctx.obj = settings


app.command()(simulate)
app.command()(ingest)
app.command()(train)
app.command()(demo)
app.command()(serve)
app.command()(up)
app.command()(backfill)
app.command()(score)
app.command()(evaluate)
app.add_typer(models_app, name="models")
app.add_typer(monitor_app, name="monitor")
app.add_typer(alerts_app, name="alerts")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")


def _exit_now(code: int) -> None:
    """Exit without the interpreter's teardown once the error is printed.

    A command that fails early can exit while native thread pools (ONNX Runtime, Arrow) are still
    starting; under load their teardown has aborted the process ("terminate called without an
    active exception", SIGABRT), turning a clean exit code into a crash. Nothing is left to
    write at this point, so flush and leave.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def execute(args: Sequence[str] | None = None) -> int:
    """Run one command line (sys.argv when None) and return its exit code.

    The whole CLI in one call, without leaving the process: `run` wraps it for the console
    script, and tests call it directly.
    """
    code, _failed = _execute(args)
    return code


def _execute(args: Sequence[str] | None) -> tuple[int, bool]:
    """The exit code, and whether it comes from an error this function printed."""
    try:
        app(args=None if args is None else list(args), prog_name="modelcycle")
    except SystemExit as exit_:
        return _exit_code(exit_.code), False
    except KeyboardInterrupt:
        stderr.print("interrupted")
        return 130, False
    except Exception as error:  # noqa: BLE001 - the last resort: report() logs the traceback,
        # prints one line (a bug says "internal error" and where its traceback is) and picks the
        # exit code; nothing else is left to catch it
        return report(error), True
    return 0, False


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def run() -> None:
    """Entry point: a failure becomes one line on stderr and its exit code (cli/failures.py)."""
    code, failed = _execute(None)
    if failed:
        _exit_now(code)
    sys.exit(code)
