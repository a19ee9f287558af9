"""Log lines a production log pipeline can use: JSON, with an exception's whole traceback."""

from __future__ import annotations

import io
import json
import logging
from contextlib import redirect_stderr
from pathlib import Path

import structlog

from modelcycle.observability import configure_logging
from modelcycle.settings import Settings
from tests.lake.rawlogs import DAY, write_healthy_day
from tests.support.cli import invoke_cli, logging_restored


def _fail() -> None:
    raise ZeroDivisionError("the divisor was zero")


def test_json_log_lines_carry_the_traceback_of_a_logged_exception() -> None:
    stream = io.StringIO()
    with logging_restored(), redirect_stderr(stream):
        configure_logging(Settings(log_format="json"))
        try:
            _fail()
        except ZeroDivisionError:
            structlog.get_logger("modelcycle.test").exception("request failed", path="/v1/x")
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "request failed",
        "Exception in ASGI application",
    ]
    for line in lines:
        assert line["level"] == "error"
        trace = line["exception"]
        assert trace.startswith("Traceback (most recent call last)"), trace
        assert "in _fail" in trace
        assert trace.rstrip().endswith("ZeroDivisionError: the divisor was zero")
        assert "exc_info" not in line
    assert lines[0]["path"] == "/v1/x"


def _log_through_the_setup(settings: Settings, log_file: Path) -> str:
    stream = io.StringIO()
    with logging_restored(), redirect_stderr(stream):
        configure_logging(settings, log_file=log_file)
        structlog.get_logger("modelcycle.test").info("trained", model="m")
        logging.getLogger("mlflow.store.db.utils").info("Creating initial MLflow database tables")
        logging.getLogger("dagster").error("the daemon crashed")
        for handler in logging.getLogger().handlers:
            handler.flush()
    return stream.getvalue()


def test_console_lines_keep_library_chatter_in_the_log_file(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "modelcycle.log"

    terminal = _log_through_the_setup(Settings(log_format="console"), log_file)

    assert "trained" in terminal and "the daemon crashed" in terminal
    assert "MLflow" not in terminal
    logged = log_file.read_text()
    assert "Creating initial MLflow database tables" in logged and "trained" in logged


def test_verbose_puts_the_library_chatter_on_the_terminal_too(tmp_path: Path) -> None:
    settings = Settings(log_format="console", log_level="DEBUG")

    terminal = _log_through_the_setup(settings, tmp_path / "modelcycle.log")

    assert "Creating initial MLflow database tables" in terminal and "trained" in terminal


def test_json_lines_only_where_chosen(tmp_path: Path) -> None:
    local = _log_through_the_setup(Settings(log_format="auto"), tmp_path / "a.log")
    production = _log_through_the_setup(
        Settings(log_format="auto", environment="prod"), tmp_path / "b.log"
    )

    assert not local.lstrip().startswith("{")  # a pipe is no reason for JSON
    events = [json.loads(line)["event"] for line in production.splitlines()]
    assert "Creating initial MLflow database tables" in events  # a log pipeline gets everything


def test_a_command_says_what_happened_once_and_keeps_its_log_lines_in_the_file(
    tmp_path: Path,
) -> None:
    write_healthy_day(tmp_path / "raw", devices=1, minutes=5)
    env = {"MODELCYCLE_HOME": str(tmp_path / "home")}
    args = ("ingest", "--date", DAY.isoformat(), "--raw", str(tmp_path / "raw"))

    quiet = invoke_cli(*args, env=env)

    assert quiet.returncode == 0, quiet.stderr
    assert "rows_written" not in quiet.stderr  # the report on stdout says it
    assert "ingested day" in (tmp_path / "home" / "logs" / "modelcycle.log").read_text()
    verbose = invoke_cli("--verbose", *args, env=env)
    assert "ingested day" in verbose.stderr
