"""Reports are redacted in a worker process: same rows as in-process, stored once, and a dead worker replaced."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot import report_intake
from knowledge.config import get_settings
from knowledge.db import session_scope
from knowledge.reports import BugReport
from tools.reports.classifiers import Prediction
from tools.reports.intake import CLASSIFY_CHARS, IncomingReport, classify_pending, prepared_rows, store_reports
from tools.reports.redaction_pool import RedactionPool

DAY = datetime(2025, 6, 2, 12, tzinfo=UTC)
BATCH = [
    IncomingReport("r1", "card 4111 1111 1111 1111 declined for jane@example.com", DAY),
    IncomingReport("r2", "login loops after reset, call +44 20 7946 0958", DAY),
    IncomingReport("r3", "card 4111 1111 1111 1111 declined for jane@example.com", DAY),  # same text as r1
]


def _started_by(action: Callable[[], object]) -> list[multiprocessing.process.BaseProcess]:
    """The child processes that ``action`` started (other tests' servers may have pools of their own)."""
    before = {child.pid for child in multiprocessing.active_children()}
    action()
    return [child for child in multiprocessing.active_children() if child.pid not in before]


def test_the_worker_process_prepares_the_rows_this_process_would() -> None:
    pool = RedactionPool()
    try:
        rows: list = []
        workers = [child.pid for child in _started_by(lambda: rows.extend(pool.prepared_rows(BATCH, "http", DAY)))]
    finally:
        pool.shutdown()
    assert rows == prepared_rows(BATCH, "http", DAY)
    assert "[card]" in rows[0]["text"] or "[card]" in rows[1]["text"]
    assert workers and os.getpid() not in workers, "the rows came from another process"


def test_reports_redacted_by_the_pool_are_stored_once_and_redacted(database_url: str) -> None:
    pool = RedactionPool()
    try:
        first = store_reports(BATCH, "http", database_url, prepare=pool.prepared_rows)
        again = store_reports(BATCH, "http", database_url, prepare=pool.prepared_rows)
    finally:
        pool.shutdown()
    assert (first.stored, first.duplicates) == (2, 1)
    assert (again.stored, again.duplicates) == (0, 3)
    with session_scope(database_url) as session:
        texts = set(session.scalars(select(BugReport.text)))
    assert not any("4111" in text or "jane@" in text or "7946" in text for text in texts), texts


def test_a_killed_worker_is_replaced_and_the_batch_still_prepared() -> None:
    pool = RedactionPool()
    try:
        (worker,) = _started_by(lambda: pool.prepared_rows(BATCH[:1], "http", DAY))
        os.kill(worker.pid, signal.SIGKILL)
        worker.join()
        rows = pool.prepared_rows(BATCH, "http", DAY)
    finally:
        pool.shutdown()
    assert rows == prepared_rows(BATCH, "http", DAY)


def test_shutdown_stops_the_workers_and_a_later_batch_starts_new_ones() -> None:
    pool = RedactionPool()
    workers = _started_by(lambda: pool.prepared_rows(BATCH[:1], "http", DAY))
    pool.shutdown()
    assert workers and not any(worker.is_alive() for worker in workers)
    try:
        assert pool.prepared_rows(BATCH[:1], "http", DAY) == prepared_rows(BATCH[:1], "http", DAY)
    finally:
        pool.shutdown()


class _Recording:
    """Files every report as ``payments`` and keeps what it was asked to read."""

    categories = ["payments"]

    def __init__(self) -> None:
        self.texts: list[str] = []

    def classify(self, texts: list[str]) -> list[Prediction]:
        self.texts.extend(texts)
        return [Prediction("payments", 0.9) for _ in texts]


def test_the_classifier_reads_only_the_start_of_a_long_report(database_url: str) -> None:
    long_text = "charged twice " + "a." * (3 * CLASSIFY_CHARS)
    reports = [IncomingReport("long", long_text, DAY), IncomingReport("short", "charged twice", DAY)]
    store_reports(reports, "http", database_url)
    classifier = _Recording()
    taken, counted = classify_pending(classifier, database_url, 0.4)
    assert (taken, counted["payments"]) == (2, 2)
    assert sorted(len(text) for text in classifier.texts) == [len("charged twice"), CLASSIFY_CHARS]
    with session_scope(database_url) as session:
        stored = session.get(BugReport, "long")
        assert stored is not None and stored.text.startswith("charged twice a.a.") and len(stored.text) > CLASSIFY_CHARS


def test_stopping_the_intake_stores_every_slack_report_already_handed_over(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_intake, "configured_classifier", lambda settings: None)
    settings = get_settings()
    messages = [IncomingReport(f"s{n}", f"login fails {n} for bob@example.com", DAY) for n in range(5)]
    handed_over = [report_intake.take_in_later([message], "slack", settings) for message in messages]
    report_intake.finish_intake(grace_s=60)  # what the server does on SIGTERM, once Bolt's listeners are done
    assert all(future.done() for future in handed_over)
    assert sum(future.result().stored for future in handed_over) == 5
    assert multiprocessing.active_children() == [], "the redaction worker stopped"
    with session_scope(database_url) as session:
        texts = sorted(session.scalars(select(BugReport.text).where(BugReport.source == "slack")))
    assert texts == [f"login fails {n} for [email]" for n in range(5)]
