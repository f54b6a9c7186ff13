"""Logs a responder's incident can be found by: JSON lines, each with the incident id."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import structlog

from bot.channels import ChannelDirectory
from bot.cli.serve import configure_logging
from bot.guards import RateLimiter
from bot.runtime import BotRuntime
from knowledge.config import Settings


@pytest.fixture
def json_logging() -> Iterator[None]:
    """Puts the previous logging configuration back after a test that calls ``configure_logging``.

    The test calls it itself: pytest swaps the captured stderr between setup and the test.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def logged_lines(captured: str) -> list[dict]:
    return [json.loads(line) for line in captured.splitlines() if line.strip()]


def test_every_line_logged_while_handling_an_incident_is_json_with_its_id(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging()
    with ThreadPoolExecutor(max_workers=2) as workers:
        runtime = BotRuntime(
            settings=Settings(),
            channels=ChannelDirectory(None),  # type: ignore[arg-type]
            limiter=RateLimiter(10),
            investigate=lambda query: None,  # type: ignore[arg-type,return-value]
            ask=lambda question, context: None,  # type: ignore[arg-type,return-value]
            workers=workers,
        )

        def investigation() -> str:
            structlog.get_logger("graph.rca_graph").info("ranked", candidates=12)
            logging.getLogger("uvicorn.error").warning("slow client")
            return "answer"

        with structlog.contextvars.bound_contextvars(incident_id="INC-42", channel="CINC1"):
            structlog.get_logger("bot.listeners.commands").info("investigating")
            assert runtime.within_time_limit(investigation) == "answer"
        structlog.get_logger("bot.server").info("between incidents")

    lines = logged_lines(capsys.readouterr().err)
    assert [line["event"] for line in lines] == ["investigating", "ranked", "slow client", "between incidents"]
    for line in lines[:3]:
        assert line["incident_id"] == "INC-42" and line["channel"] == "CINC1"
        assert line["level"] in {"info", "warning"} and line["timestamp"].endswith("Z")
    assert lines[2]["logger"] == "uvicorn.error"
    assert "incident_id" not in lines[3]


def test_an_exception_is_one_json_line_with_its_traceback(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging()
    try:
        raise RuntimeError("database went away")
    except RuntimeError:
        logging.getLogger("apscheduler.executors.default").exception("job failed")
    (line,) = logged_lines(capsys.readouterr().err)
    assert line["event"] == "job failed" and "RuntimeError: database went away" in line["exception"]
