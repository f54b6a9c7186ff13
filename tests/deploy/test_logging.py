"""Logs a responder's incident can be found by: JSON lines, each with the incident id."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import structlog
from sqlalchemy import create_engine, text

from bot.blocks import SlackMessage
from bot.channels import ChannelDirectory
from bot.cli.serve import configure_logging
from bot.guards import RateLimiter
from bot.replies import prepare
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


def _runtime(workers: ThreadPoolExecutor) -> BotRuntime:
    return BotRuntime(
        settings=Settings(),
        channels=ChannelDirectory(None),  # type: ignore[arg-type]
        limiter=RateLimiter(10),
        investigate=lambda query: None,  # type: ignore[arg-type,return-value]
        ask=lambda question, context: None,  # type: ignore[arg-type,return-value]
        workers=workers,
    )


def test_every_line_logged_while_handling_an_incident_is_json_with_its_id(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging()
    with ThreadPoolExecutor(max_workers=2) as workers:
        runtime = _runtime(workers)

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


def test_a_failed_database_write_is_logged_by_its_type_and_code_not_its_values(
    json_logging: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An investigation that failed was logged with its traceback, which ends in SQLAlchemy's message: the
    statement and every parameter it was given (here a person's name)."""
    configure_logging()
    database = create_engine(f"sqlite:///{tmp_path / 'responders.db'}")
    with database.begin() as connection:
        connection.execute(text("CREATE TABLE responders (name TEXT CHECK (length(name) < 5))"))

    def investigation() -> SlackMessage:
        with database.begin() as connection:
            connection.execute(text("INSERT INTO responders (name) VALUES (:name)"), {"name": "Rosalind Featherstonehaugh"})
        raise AssertionError("the insert was refused")

    with ThreadPoolExecutor(max_workers=2) as workers:
        answer = prepare(_runtime(workers), "command", investigation)
    assert "The investigation failed (IntegrityError)" in answer.text
    logged = capsys.readouterr().err
    (line,) = [line for line in logged_lines(logged) if line["event"] == "investigation failed"]
    assert "Featherstonehaugh" not in logged
    assert line["error"] == "IntegrityError (sqlite3.IntegrityError, SQLITE_CONSTRAINT_CHECK)"


def test_an_error_the_driver_raises_itself_is_logged_by_its_type_and_code_not_its_values(postgres_url: str) -> None:
    """Code on psycopg itself (LangGraph's checkpointer) raises the driver's error, not SQLAlchemy's: it was not
    taken for a database error and was logged with its traceback, whose message repeats the refused row."""
    import psycopg
    from sqlalchemy import make_url

    from knowledge.db import failure_fields
    from tests.refused_writes import PERSON, refusing_table

    refusing_table(postgres_url)
    conninfo = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as connection, pytest.raises(psycopg.Error) as refused:
        connection.execute("INSERT INTO responders (name) VALUES (%s)", (PERSON,))
    assert PERSON in str(refused.value)  # what the traceback ended in
    try:
        raise RuntimeError("the thread's memory was not saved") from refused.value
    except RuntimeError as error:
        fields = failure_fields(error)
    assert fields == {"error": "psycopg.errors.CheckViolation, SQLSTATE 23514"}
