"""Log lines a production log pipeline can use: JSON, with an exception's whole traceback."""

from __future__ import annotations

import io
import json
import logging
from contextlib import redirect_stderr

import structlog

from modelcycle.observability import configure_logging
from modelcycle.settings import Settings
from tests.support.cli import logging_restored


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
