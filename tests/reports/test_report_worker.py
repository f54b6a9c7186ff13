"""POST /reports stores first and the worker classifies later: each report stored once, classified and counted once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import httpx
import pytest
from sqlalchemy import func, select

from bot import report_intake
from knowledge.config import get_settings
from knowledge.db import session_scope
from knowledge.reports import BugReport, CategoryDaily
from tools.reports.classifiers import Prediction
from tools.reports.intake import IncomingReport, classify_pending, store_reports
from tools.reports.worker import classify_pending_reports

AUTH = {"Authorization": "Bearer s3cret-reports-token"}
DAY = datetime(2025, 6, 2, 12, tzinfo=UTC)
OTHER_CONFIDENCE = 0.4


class _ByKeyword:
    """Files reports by one obvious word; ``gate`` (when given) holds every call until it is set.

    A stand-in for the trained model: these tests are about when and how often
    reports are classified and counted, which a held or failing classifier shows.
    """

    categories = ["payments", "login"]

    def __init__(self, gate: threading.Event | None = None, fail: bool = False, pause_s: float = 0.0) -> None:
        self.gate = gate
        self.fail = fail
        self.pause_s = pause_s
        self.calls = 0

    def classify(self, texts: list[str]) -> list[Prediction]:
        self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(timeout=30)
        if self.fail:
            raise RuntimeError("the replica died while classifying")
        time.sleep(self.pause_s)
        return [Prediction("payments" if "charged" in t else "login", 0.9) for t in texts]


def _state(url: str) -> tuple[dict[str, str | None], dict[tuple[date, str], int]]:
    with session_scope(url) as session:
        categories = {r.id: r.category for r in session.scalars(select(BugReport))}
        daily = {(d.day, d.category): d.count for d in session.scalars(select(CategoryDaily))}
    return categories, daily


def _wait_until_classified(url: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_scope(url) as session:
            if not session.scalar(select(func.count()).select_from(BugReport).where(BugReport.category.is_(None))):
                return
        time.sleep(0.1)
    pytest.fail("the background worker did not classify the stored reports")


def test_the_endpoint_answers_before_classification_and_the_worker_counts_each_report_once(
    reports_server: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    monkeypatch.setattr(report_intake, "configured_classifier", lambda settings: _ByKeyword(gate))
    batch = [
        {"id": "w1", "text": "charged twice, card 4111 1111 1111 1111", "created_at": "2025-06-02T09:00:00Z"},
        {"id": "w2", "text": "cannot log in", "created_at": "2025-06-02T10:00:00Z"},
        {"id": "w3", "text": "CANNOT  log in", "created_at": "2025-06-02T11:00:00Z"},
    ]
    try:
        response = httpx.post(reports_server, json=batch, headers=AUTH, timeout=30)
        assert response.status_code == 200
        assert response.json() == {"received": 3, "stored": 2, "duplicates": 1}
        categories, daily = _state(database_url)
        assert categories == {"w1": None, "w2": None}, "stored and answered while the classifier is still held"
        assert daily == {}
    finally:
        gate.set()
    _wait_until_classified(database_url)
    categories, daily = _state(database_url)
    assert categories == {"w1": "payments", "w2": "login"}
    assert daily == {(date(2025, 6, 2), "payments"): 1, (date(2025, 6, 2), "login"): 1}


def test_overlapping_batches_from_twenty_senders_are_stored_once(
    reports_server: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_intake, "configured_classifier", lambda settings: _ByKeyword())
    pool = [{"id": f"o{n}", "text": f"feed not loading on screen {n}"} for n in range(240)]
    # Windows of 50 that overlap their neighbours, plus the same texts again under other ids.
    batches = [pool[start : start + 50] for start in range(0, 200, 10)]
    batches[-1] = batches[-1] + [{"id": f"again-{n}", "text": f"Feed not loading on screen {n}"} for n in range(5)]

    def send(batch: list[dict[str, str]]) -> dict[str, int]:
        response = httpx.post(reports_server, json=batch, headers=AUTH, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(max_workers=20) as senders:
        answers = list(senders.map(send, batches))
    sent_ids = {report["id"] for batch in batches for report in batch if not report["id"].startswith("again")}
    assert sum(a["stored"] for a in answers) == len(sent_ids) == 240
    assert sum(a["stored"] + a["duplicates"] for a in answers) == sum(len(b) for b in batches)
    _wait_until_classified(database_url)
    categories, daily = _state(database_url)
    # Whichever copy of a repeated text arrives first keeps its id; the other is a duplicate.
    repeated = {n: {f"o{n}", f"again-{n}"} & set(categories) for n in range(5)}
    assert all(len(kept) == 1 for kept in repeated.values()), repeated
    assert set(categories) - set().union(*repeated.values()) == {f"o{n}" for n in range(5, 240)}
    assert sum(daily.values()) == 240, "every stored report counted once"


def test_two_workers_racing_on_postgresql_take_and_count_each_report_once(postgres_url: str) -> None:
    from knowledge.db import migrate

    migrate(postgres_url)
    reports = [IncomingReport(f"r{n}", f"{'charged' if n % 3 == 0 else 'login'} problem number {n}", DAY) for n in range(600)]
    assert store_reports(reports, "http", postgres_url).stored == 600
    taken: dict[str, int] = {"a": 0, "b": 0}
    counted: dict[str, int] = {"a": 0, "b": 0}
    start = threading.Barrier(2)

    def drain(name: str) -> None:
        classifier = _ByKeyword(pause_s=0.05)  # long enough that both hold rows at the same time
        start.wait()
        while True:
            batch_taken, by_category = classify_pending(classifier, postgres_url, OTHER_CONFIDENCE, limit=50)
            taken[name] += batch_taken
            counted[name] += by_category.total()
            if batch_taken == 0:
                return

    workers = [threading.Thread(target=drain, args=(name,)) for name in taken]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert taken["a"] > 0 and taken["b"] > 0, "both workers had rows to classify"
    assert taken["a"] + taken["b"] == 600, "SKIP LOCKED: no report was taken by both"
    assert counted["a"] + counted["b"] == 600
    categories, daily = _state(postgres_url)
    assert None not in categories.values()
    assert daily == {(date(2025, 6, 2), "payments"): 200, (date(2025, 6, 2), "login"): 400}


def test_reports_a_crashed_worker_held_are_classified_by_the_next_run(database_url: str) -> None:
    store_reports([IncomingReport(f"c{n}", f"charged twice, order {n}", DAY) for n in range(10)], "http", database_url)
    held = threading.Event()
    dying = _ByKeyword(gate=held, fail=True)
    crashed: list[BaseException] = []

    def crash() -> None:
        try:
            classify_pending(dying, database_url, OTHER_CONFIDENCE)
        except RuntimeError as error:
            crashed.append(error)

    worker = threading.Thread(target=crash)
    worker.start()
    while dying.calls == 0:  # it holds the rows (FOR UPDATE on PostgreSQL) and is stuck classifying them
        time.sleep(0.01)
    held.set()
    worker.join(timeout=30)
    assert crashed, "the worker died mid-batch"
    categories, daily = _state(database_url)
    assert set(categories.values()) == {None} and daily == {}, "nothing of the dead worker's batch was kept"

    catch_up = report_intake.pending_reports(get_settings(), database_url)  # what the scheduler's job drains
    assert classify_pending_reports(catch_up) == 10
    categories, daily = _state(database_url)
    assert set(categories.values()) == {"other"}, "no classifier is trained in this data dir"
    assert daily == {(date(2025, 6, 2), "other"): 10}
    assert classify_pending_reports(catch_up) == 0, "a second run finds nothing left"
    assert _state(database_url)[1] == {(date(2025, 6, 2), "other"): 10}


def test_a_classification_the_database_refuses_is_logged_by_sqlstate_without_the_reports_text(postgres_url: str) -> None:
    """The worker logged the failure with its traceback, which ends in PostgreSQL's message for the refused
    row ("Failing row contains (...)"): the report's text, and the customer's name in it, went to the log."""
    from sqlalchemy import text as sql
    from structlog.processors import format_exc_info
    from structlog.testing import capture_logs

    from knowledge.db import get_engine, migrate
    from tests.waiting import wait_until
    from tools.reports.worker import ClassificationWorker, PendingReports

    migrate(postgres_url)
    report = IncomingReport("r-refused", "Rosalind Featherstonehaugh here: login fails with my card", DAY)
    assert store_reports([report], "http", postgres_url).stored == 1
    with get_engine(postgres_url).begin() as connection:  # PostgreSQL's refusal names the whole row it refused
        connection.execute(sql("ALTER TABLE bug_reports ADD CONSTRAINT refuses_login CHECK (category <> 'login')"))
    with capture_logs(processors=[format_exc_info]) as logs:  # the traceback rendered, as in production
        ClassificationWorker().wake(PendingReports(postgres_url, _ByKeyword, OTHER_CONFIDENCE))
        [failed] = wait_until(lambda: [entry for entry in logs if entry["event"] == "report classification failed; reports stay pending"],
                              "the refused classification was never logged")
    assert not [entry for entry in logs if "Featherstonehaugh" in str(entry) or "fails with my card" in str(entry)]
    assert failed["error"] == "IntegrityError (psycopg.errors.CheckViolation, SQLSTATE 23514)"
    assert _state(postgres_url)[0] == {"r-refused": None}
