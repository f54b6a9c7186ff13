"""``POST /reports``: bug reports from other systems, answered only once they are committed.

Accepts a JSON list of ``{id, text[, category][, created_at]}`` or
``{"reports": [...]}`` with ``Authorization: Bearer <CULPRIT_REPORTS_TOKEN>``.
The request redacts and inserts the batch unclassified in one short
transaction (in the thread pool, so the event loop keeps serving Slack) and
answers after the commit. Classifying and counting happen afterwards, in one
background thread per process that starts once a burst of batches has
settled, so a burst is stored at the speed of the database, not of the model.
Reports a replica leaves unclassified (it crashed, the model failed) are
taken by the next drain or by the scheduler's catch-up job every minute.
"""

from __future__ import annotations

import hmac
import json
import os
import sys
import threading
import time
from typing import Any

import structlog
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.metrics import REPORTS_CLASSIFIED, REPORTS_INGESTED
from knowledge.config import get_settings
from knowledge.db import DatabaseUnavailable
from tools.reports.classifiers import configured_classifier
from tools.reports.intake import (
    CLASSIFY_BATCH,
    IncomingReport,
    IntakeResult,
    classify_pending,
    report_from_mapping,
    store_reports,
)

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_REPORTS = 5000
SETTLE_S = 0.5  # classify once no batch has arrived for this long...
MAX_DELAY_S = 5.0  # ...or this long after the first unclassified batch, under steady load
WORKER_NICENESS = 10  # the request threads of this process come first
# Batches written at once per process: plenty for two cores and one database, and within the engine's
# pool, so a burst does not open (and then close) an overflow connection per waiting request.
CONCURRENT_WRITES = 8
_writers = threading.BoundedSemaphore(CONCURRENT_WRITES)


async def post_reports(request: Request) -> JSONResponse:
    """Store a batch of reports; 200 with counts after the commit, else 401/400/413/503 with the reason.

    The answer is ``{"received", "stored", "duplicates"}``: the reports are
    committed, and classified moments later by :data:`classification`.
    """
    settings = get_settings()
    expected = settings.reports_token
    given = request.headers.get("authorization", "")
    if not expected:
        return _error(503, "report intake is off: set CULPRIT_REPORTS_TOKEN on the bot")
    if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].encode(), expected.encode()):
        return _error(401, "missing or wrong bearer token (Authorization: Bearer <CULPRIT_REPORTS_TOKEN>)")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return _error(413, f"body over {MAX_BODY_BYTES} bytes: send smaller batches")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _error(413, f"body over {MAX_BODY_BYTES} bytes: send smaller batches")
    try:
        reports = _parse(body)
    except ValueError as error:
        return _error(400, str(error))
    if len(reports) > MAX_REPORTS:
        return _error(413, f"{len(reports)} reports in one request; send at most {MAX_REPORTS}")
    try:
        result = await run_in_threadpool(_store, reports, settings.resolved_database_url)
    except (DatabaseUnavailable, OperationalError, InterfaceError) as error:
        log.warning("reports not stored: database unreachable", error=str(error)[:200], reports=len(reports))
        return _error(503, "the database is unreachable; send the same batch again (reports are stored once by id)")
    REPORTS_INGESTED.labels(source="http").inc(result.stored)
    if result.stored:
        classification.wake(settings.resolved_database_url)
    return JSONResponse({"received": result.received, "stored": result.stored, "duplicates": result.duplicates})


def _store(reports: list[IncomingReport], url: str) -> IntakeResult:
    with _writers:
        return store_reports(reports, "http", url)


def classify_pending_reports(url: str | None = None) -> int:
    """Classify and count every unclassified report, a batch per transaction; returns how many.

    Run by the intake worker after a burst and by the scheduler every minute.
    """
    classifier = configured_classifier()
    counted = 0
    while True:
        taken, by_category = classify_pending(classifier, url)
        for category, count in by_category.items():
            REPORTS_CLASSIFIED.labels(category=category).inc(count)
        counted += by_category.total()
        if taken < CLASSIFY_BATCH:
            return counted


class ClassificationWorker:
    """One daemon thread per process that drains unclassified reports after the endpoint stored some.

    It waits for a burst to settle (``SETTLE_S`` without a new batch, at most
    ``MAX_DELAY_S``) and runs at a lower CPU priority, so the requests of the
    burst are answered first.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._first: float | None = None
        self._last = 0.0
        self._databases: set[str] = set()
        self._thread: threading.Thread | None = None

    def wake(self, url: str) -> None:
        """Note that reports were stored in ``url``; the thread classifies them once the burst settles."""
        with self._changed:
            self._databases.add(url)
            self._last = time.monotonic()
            if self._first is None:
                self._first = self._last
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="report-classification", daemon=True)
                self._thread.start()
            self._changed.notify()

    def _run(self) -> None:
        if sys.platform == "linux":  # Linux sets the niceness of one thread by its id
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
        while True:
            for url in self._wait_for_a_settled_burst():
                try:
                    counted = classify_pending_reports(url)
                except Exception:  # the rows stay unclassified; the next wake or the catch-up job takes them
                    log.exception("report classification failed; reports stay pending")
                    continue
                log.info("reports classified", reports=counted)

    def _wait_for_a_settled_burst(self) -> set[str]:
        with self._changed:
            while True:
                if self._first is None:
                    self._changed.wait()
                    continue
                due = min(self._last + SETTLE_S, self._first + MAX_DELAY_S)
                if time.monotonic() >= due:
                    self._first = None
                    databases, self._databases = self._databases, set()
                    return databases
                self._changed.wait(due - time.monotonic())


classification = ClassificationWorker()


def _parse(body: bytes) -> list[IncomingReport]:
    try:
        payload: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"body is not JSON ({error})") from error
    if isinstance(payload, dict):
        payload = payload.get("reports")
    if not isinstance(payload, list):
        raise ValueError('expected a JSON list of reports or {"reports": [...]}')
    reports = []
    for index, item in enumerate(payload):
        if not isinstance(item, dict):
            raise ValueError(f"report {index}: expected an object with 'id' and 'text'")
        try:
            reports.append(report_from_mapping(item))
        except ValueError as error:
            raise ValueError(f"report {index}: {error}") from error
    return reports


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
