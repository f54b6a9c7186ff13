"""A message in the feedback channel is stored as a bug report even when the database is down for a while."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from bot import report_intake
from knowledge.config import Settings
from knowledge.db import get_engine, migrate, session_scope
from knowledge.reports import BugReport
from tests.bot.database_outage import DatabaseOutage
from tests.waiting import wait_until
from tools.reports.intake import IncomingReport

REPORT = IncomingReport(id="slack:CREPORTS:1714556400.000100", text="checkout spins forever, mail me at bob@example.com")


@pytest.fixture
def outage(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[DatabaseOutage]:
    """The store's PostgreSQL database, migrated, behind an address that is down until ``end()``."""
    migrate(postgres_url)
    monkeypatch.setattr(report_intake, "configured_classifier", lambda settings: None)  # storing is what is tested
    down = DatabaseOutage(postgres_url)
    yield down
    get_engine(down.url).dispose()
    down.close()


def _stored(database_url: str) -> list[str]:
    with session_scope(database_url) as session:
        return list(session.scalars(select(BugReport.text)))


def test_a_report_is_stored_once_the_database_is_back(outage: DatabaseOutage, postgres_url: str, data_dir: Path) -> None:
    waited: list[float] = []

    def wait(seconds: float) -> None:
        waited.append(seconds)
        if len(waited) == 2:
            outage.end()  # back after the second wait

    settings = Settings(data_dir=data_dir, database_url=outage.url)
    stored = report_intake.take_in_later([REPORT], "slack", settings, wait=wait).result()
    assert waited == [1.0, 5.0]
    assert stored.stored == 1
    assert _stored(postgres_url) == ["checkout spins forever, mail me at [email]"]


def test_after_the_last_wait_the_report_is_given_up_with_the_error(outage: DatabaseOutage, postgres_url: str, data_dir: Path) -> None:
    waited: list[float] = []
    settings = Settings(data_dir=data_dir, database_url=outage.url)
    failed = report_intake.take_in_later([REPORT], "slack", settings, wait=waited.append)
    assert isinstance(failed.exception(), OperationalError)  # what messages._log_stored logs as an error
    assert waited == [1.0, 5.0, 30.0]
    assert _stored(postgres_url) == []


@pytest.mark.timeout(60)  # a hang guard only: stopping used to wait out 1 + 5 + 30 s per queued report
def test_stopping_during_an_outage_tries_each_queued_report_once_more_and_logs_the_ids_not_stored(
    outage: DatabaseOutage, postgres_url: str, data_dir: Path
) -> None:
    settings = Settings(data_dir=data_dir, database_url=outage.url)
    reports = [IncomingReport(id=f"slack:CREPORTS:17145564{n:02d}.000100", text=f"checkout spins forever {n}, mail bob@example.com")
               for n in range(3)]  # fmt: skip
    with capture_logs() as logs:
        queued = [report_intake.take_in_later([report], "slack", settings) for report in reports]
        # The first report failed once and waits for its next try, the other two behind it: now the server stops.
        wait_until(lambda: any(entry["event"] == "reports not stored; trying again" for entry in logs),
                   "the first report was never tried")  # fmt: skip
        report_intake.finish_intake(grace_s=60)

    assert all(isinstance(report.exception(timeout=0), OperationalError) for report in queued)
    # The two reports queued behind the first were each tried once, at once, never put to wait for a retry.
    first_tries = [entry for entry in logs if entry["event"] == "reports not stored; trying again" and entry["attempt"] == 1]
    assert len(first_tries) == 1
    unsaved = [entry for entry in logs if entry["event"].startswith("reports from slack not stored at shutdown")]
    assert [(entry["count"], entry["report_ids"]) for entry in unsaved] == [(3, [report.id for report in reports])]
    assert not [entry for entry in logs if "spins forever" in str(entry) or "bob@" in str(entry)], "a log kept a report's text"
    assert _stored(postgres_url) == []


def test_past_the_intake_bound_a_report_is_not_queued_and_the_rest_are_stored_once_the_database_answers(
    postgres_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each Slack report waiting for a hung database queued on the intake thread without end: a flood of them
    grew memory for as long as the database hung. Past ``INTAKE_WAITING`` a report is refused at once."""
    migrate(postgres_url)
    monkeypatch.setattr(report_intake, "configured_classifier", lambda settings: None)
    monkeypatch.setattr(report_intake, "INTAKE_WAITING", 3)
    monkeypatch.setattr(report_intake, "_slack_intake", report_intake._SlackIntake())  # one with the bound above
    hung, database_answers = threading.Event(), threading.Event()
    store = report_intake.store_reports

    def hung_store(*args: Any, **kwargs: Any) -> Any:
        hung.set()
        database_answers.wait(timeout=60)
        return store(*args, **kwargs)

    monkeypatch.setattr(report_intake, "store_reports", hung_store)
    settings = Settings(data_dir=data_dir, database_url=postgres_url)
    reports = [IncomingReport(id=f"slack:CREPORTS:17145564{n:02d}.000100", text=f"checkout spins forever {n}") for n in range(5)]
    try:
        handed_over = [report_intake.take_in_later([report], "slack", settings) for report in reports]
        assert hung.wait(timeout=30), "the first report never reached the database"
        assert [future is None for future in handed_over] == [False, False, False, True, True]
    finally:
        database_answers.set()
    assert [future.result(timeout=30).stored for future in handed_over[:3]] == [1, 1, 1]
    assert sorted(_stored(postgres_url)) == [f"checkout spins forever {n}" for n in range(3)]
