"""Logs a responder's incident can be found by: JSON lines, each with the incident id."""

from __future__ import annotations

import json
import logging
import queue
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import Engine, create_engine, text

from bot.blocks import SlackMessage
from bot.channels import ChannelDirectory
from bot.cli.console import log_to_stderr
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


REPORTER = "jane@example.com"


def _reporters_refusing_a_second(postgres_url: str) -> Engine:
    """A PostgreSQL table holding :data:`REPORTER` once: inserting them again is refused with
    ``DETAIL: Key (reporter)=(jane@example.com) already exists``."""
    database = create_engine(postgres_url)
    with database.begin() as connection:
        connection.execute(text("CREATE TABLE reporters (reporter TEXT UNIQUE)"))
        connection.execute(text("INSERT INTO reporters VALUES (:reporter)"), {"reporter": REPORTER})
    return database


def _store_the_reporter_again(database: Engine) -> None:
    with database.begin() as connection:
        connection.execute(text("INSERT INTO reporters VALUES (:reporter)"), {"reporter": REPORTER})


def _log_storing_the_reporter_again(postgres_url: str, logger: Any, message: str) -> None:
    """PostgreSQL refusing :data:`REPORTER` a second time, logged by ``logger`` with its traceback."""
    database = _reporters_refusing_a_second(postgres_url)
    try:
        _store_the_reporter_again(database)
    except Exception:
        logger.exception(message)
    finally:
        database.dispose()


def _check_alerts_storing_the_reporter_again(database: Engine) -> None:
    """A job failing as the hourly alert checks fail: each check's error logged, then raised together."""
    from bot.jobs import run_alert_checks

    failures = run_alert_checks([("reporters", partial(_store_the_reporter_again, database))])
    raise ExceptionGroup("alert checks failed; the alerts already recorded were posted", failures)


def test_a_scheduled_job_postgresql_refused_is_logged_with_its_traceback_but_not_the_refused_e_mail(
    json_logging: None, capsys: pytest.CaptureFixture[str], postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """APScheduler logs a failed job with its traceback, which ended in PostgreSQL's DETAIL (the reporter's
    e-mail) and SQLAlchemy's parameters, each in the exception group the alert checks raise: the configured
    logging now names that error by type and SQLSTATE."""
    from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
    from apscheduler.schedulers.background import BackgroundScheduler

    import bot.jobs

    # configure_logging caches each logger on first use, bound to this test's captured stderr: the job module's
    # own logger would keep writing there after the test, so the test logs through a fresh one of the same name.
    monkeypatch.setattr(bot.jobs, "log", structlog.get_logger("bot.jobs"))
    database = _reporters_refusing_a_second(postgres_url)
    configure_logging()
    failed: queue.Queue[JobExecutionEvent] = queue.Queue()
    scheduler = BackgroundScheduler()
    scheduler.add_listener(failed.put, EVENT_JOB_ERROR)
    scheduler.start()
    try:
        scheduler.add_job(_check_alerts_storing_the_reporter_again, args=[database], id="alert_checks")
        (refused,) = failed.get(timeout=120).exception.exceptions
        assert REPORTER in str(refused)  # what the traceback ended in
    finally:
        scheduler.shutdown()
        database.dispose()
    logged = capsys.readouterr().err
    assert REPORTER not in logged
    (line,) = [line for line in logged_lines(logged) if "raised an exception" in line["event"]]
    assert line["logger"] == "apscheduler.executors.default" and "_store_the_reporter_again" in line["exception"]
    assert "IntegrityError: IntegrityError (psycopg.errors.UniqueViolation, SQLSTATE 23505)" in line["exception"]
    assert "UniqueViolation: psycopg.errors.UniqueViolation, SQLSTATE 23505" in line["exception"]


def test_a_listener_error_bolt_logs_in_its_message_is_named_by_type_and_sqlstate(
    json_logging: None, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    """Bolt's default error handler puts the error's text in the message itself, besides the traceback."""
    from slack_bolt.listener.listener_error_handler import DefaultListenerErrorHandler
    from slack_bolt.request import BoltRequest

    database = _reporters_refusing_a_second(postgres_url)
    configure_logging()
    try:
        _store_the_reporter_again(database)
    except Exception as error:
        DefaultListenerErrorHandler(logging.getLogger("slack_bolt.App")).handle(error, BoltRequest(body=""), None)
    finally:
        database.dispose()
    logged = capsys.readouterr().err
    assert REPORTER not in logged
    (line,) = logged_lines(logged)
    assert line["event"] == (
        "Failed to run listener function (error: IntegrityError (psycopg.errors.UniqueViolation, SQLSTATE 23505))"
    )


def test_a_url_password_in_a_logged_message_or_traceback_is_masked(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging()
    try:
        raise ConnectionError("cannot reach https://chroma:s3cret@chroma.internal:8000/api")
    except ConnectionError as error:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        structlog.get_logger("bot.server").exception("wiki unavailable", reason=str(error))
    logged = capsys.readouterr().err
    assert "s3cret" not in logged
    assert [line["exception"].splitlines()[-1] for line in logged_lines(logged)] == [
        "ConnectionError: cannot reach https://***@chroma.internal:8000/api"
    ] * 2


def test_a_command_logs_a_traceback_without_its_frames_values(
    json_logging: None, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    """A terminal command's log (``log_to_stderr``) drew tracebacks with Rich, which prints each frame's local
    variables: SQLAlchemy's hold the statement's parameters, the refused e-mail among them."""
    log_to_stderr()
    _log_storing_the_reporter_again(postgres_url, structlog.get_logger("knowledge.ingest"), "reports not stored")
    logged = capsys.readouterr().err
    assert REPORTER not in logged and "reports not stored" in logged
    assert "IntegrityError: IntegrityError (psycopg.errors.UniqueViolation, SQLSTATE 23505)" in logged


def test_a_command_logs_a_library_s_traceback_without_the_refused_e_mail_or_a_password(
    json_logging: None, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    """In a terminal command the standard library's loggers had no handler: logging's last resort printed
    APScheduler's traceback ending in PostgreSQL's DETAIL (the reporter's e-mail), and an HTTP client's error
    with the URL's password. They now go through the same redaction as the command's own lines."""
    logging.getLogger().handlers.clear()  # as in a command's process: pytest's capture is a handler
    log_to_stderr()
    scheduler = logging.getLogger("apscheduler.executors.default")
    _log_storing_the_reporter_again(postgres_url, scheduler, 'Job "alert_checks" raised an exception')
    try:
        raise ConnectionError("cannot reach https://admin:s3cret@chroma.internal:8000/api")
    except ConnectionError:
        logging.getLogger("httpx").exception("request failed")
    logged = capsys.readouterr()
    assert REPORTER not in logged.err and "s3cret" not in logged.err and logged.out == ""
    assert 'Job "alert_checks" raised an exception' in logged.err and "request failed" in logged.err
    assert "IntegrityError: IntegrityError (psycopg.errors.UniqueViolation, SQLSTATE 23505)" in logged.err
    assert "ConnectionError: cannot reach https://***@chroma.internal:8000/api" in logged.err
