"""The `modelcycle` application: commands, and failures turned into one line and an exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer
import typer.core
import typer.main

from modelcycle.cli.alerts import alerts_app
from modelcycle.cli.context import build_settings, stderr
from modelcycle.cli.db import db_app
from modelcycle.cli.demo import demo
from modelcycle.cli.failures import INTERRUPTED_EXIT_CODE, exit_codes_epilog, report
from modelcycle.cli.ingest import ingest
from modelcycle.cli.models import models_app
from modelcycle.cli.monitor import evaluate, monitor_app, score
from modelcycle.cli.release import release_app
from modelcycle.cli.serve import serve
from modelcycle.cli.service import service_app
from modelcycle.cli.simulate import simulate
from modelcycle.cli.train import train
from modelcycle.cli.up import backfill, up
from modelcycle.cli.users import users_app
from modelcycle.observability import configure_logging, log_file_path, quiet_terminal

app = typer.Typer(
    name="modelcycle",
    help="The whole life of a machine-learning model, from raw device logs to registered models.",
    epilog=exit_codes_epilog(),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # click's own help: paragraphs re-wrapped to the width, `[default: …]` kept, a flag without a
    # type; typer's rich panels keep a docstring's line breaks and read `[…]` as markup
    rich_markup_mode=None,
    context_settings={"max_content_width": 100},
)


# Long-running services whose log lines are their output: their INFO lines stay on the terminal.
_SPEAK_THROUGH_LOGS = {"serve", "up", "service"}


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"modelcycle {version('modelcycle')}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Log at DEBUG (over MODELCYCLE_LOG_LEVEL), libraries' lines included, on the "
            "terminal; a failure prints its traceback.",
        ),
    ] = False,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Settings come from MODELCYCLE_* environment variables (see docs/configuration.md)."""
    settings = build_settings()
    if verbose:
        settings = settings.model_copy(update={"log_level": "DEBUG"})
    configure_logging(settings, log_file=log_file_path(settings))
    if ctx.invoked_subcommand not in _SPEAK_THROUGH_LOGS:
        quiet_terminal()  # the command prints what happened; its INFO lines go to the log file
    ctx.obj = settings


# Each command's line in `modelcycle --help`: whole, at 80 columns (click cuts a longer first
# sentence with "...").
app.command(short_help="Simulate a fleet's sensor logs, one row a minute.")(simulate)
app.command(short_help="Validate a day of logs into a Parquet partition of the lake.")(ingest)
app.command(short_help="Train both models on a window of days and register them.")(train)
app.command(short_help="The whole lifecycle, day by day, on a small simulated fleet.")(demo)
app.command(short_help="Serve the champions of both models as an HTTP API.")(serve)
app.command(short_help="Start MLflow, the Dagster UI and daemon, and the API.")(up)
app.command(short_help="Queue the daily Dagster job for a range of days.")(backfill)
app.command(short_help="Score a day with each champion; measure feature drift.")(score)
app.command(short_help="Record the models' metrics on a day whose labels arrived.")(evaluate)
app.add_typer(models_app, name="models")
app.add_typer(monitor_app, name="monitor")
app.add_typer(
    alerts_app, name="alerts", short_help="Check alert rules, list alerts, test channels."
)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(release_app, name="release")
app.add_typer(service_app, name="service")


# What an option's value looks like in --help, by option name; other values by type.
_METAVARS = {
    "date": "YYYY-MM-DD",
    "start": "YYYY-MM-DD",
    "end": "YYYY-MM-DD",
    "evaluate_date": "YYYY-MM-DD",
    "drift_start": "YYYY-MM-DD",
    "at": "TIME",
    "raw": "URL",
    "lake": "URL",
    "model": "NAME",
    "old_name": "NAME",
    "host": "HOST",
    "version": "V",
    "role": "ROLE",
    "kind": "KIND",
    "customer": "ID",
    "state": "STATE",
    "label": "TEXT",
    "plot": "FILE",
    "out": "DIR",
}
_METAVARS_BY_TYPE = {"int": "N", "float": "X"}


def _command() -> typer.core.TyperGroup:
    """The app as a click command, every option's value named for a person (`--date YYYY-MM-DD`,
    `--days N`) rather than by its Python type (`<str>`, `<int range>`), every command's summary
    whole."""
    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperGroup)
    _name_values(command)
    return command


def _name_values(command: object) -> None:
    """Value names in every option's help, and each command's whole first sentence."""
    for param in getattr(command, "params", ()):
        if (
            isinstance(param, typer.core.TyperOption)
            and not param.is_flag
            and param.metavar is None
        ):
            by_type = "PATH" if param.type_descriptor.is_path else "TEXT"
            by_type = _METAVARS_BY_TYPE.get(param.bare_type(), by_type)
            param.metavar = _METAVARS.get(param.name or "", by_type)
        elif isinstance(param, typer.core.TyperArgument) and param.metavar is None:
            param.metavar = (param.name or "value").upper()
            # typer would add the type after the name (`NAME <str>`); the name says it
            setattr(param, "display_type_rich", lambda ctx: None)  # noqa: B010
    if isinstance(command, typer.core.TyperGroup):
        for sub in command.commands.values():
            if sub.short_help is None and sub.help:
                # the whole first sentence, wrapped in the list, rather than cut with "..."
                sub.short_help = _first_sentence(sub.help)
            _name_values(sub)


def _first_sentence(help_text: str) -> str:
    paragraph = " ".join(help_text.strip().split("\n\n")[0].split())
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[: end + 1]


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
        _command()(args=None if args is None else list(args), prog_name="modelcycle")
    except SystemExit as exit_:
        return _exit_code(exit_.code), False
    except KeyboardInterrupt:
        stderr.print("interrupted")
        return INTERRUPTED_EXIT_CODE, False
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
