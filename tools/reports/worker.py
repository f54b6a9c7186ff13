"""Classify and count stored reports in the background, once a burst of them has settled.

Every way in stores a report unclassified (:func:`tools.reports.intake.store_reports`)
and wakes this process's :class:`ClassificationWorker`. Its one thread waits
until no batch has arrived for ``SETTLE_S`` (at most ``MAX_DELAY_S`` after the
first) and runs at a lower CPU priority, so the requests of a burst are
answered at the speed of the database, not of the model. Reports it leaves
unclassified (the process died, the model failed) are taken by its next drain
or by anything else calling :func:`classify_pending_reports`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from knowledge.db import failure_fields
from tools.reports.classifiers import Classifier
from tools.reports.intake import CLASSIFY_BATCH, classify_pending

log = structlog.get_logger(__name__)

SETTLE_S = 0.5  # classify once no batch has arrived for this long...
MAX_DELAY_S = 5.0  # ...or this long after the first unclassified batch, under steady load
WORKER_NICENESS = 10  # the request threads of this process come first

OnCounted = Callable[[Counter[str]], None]
"""Told the reports counted per category after each classified batch (the bot's metrics)."""


@dataclass(frozen=True)
class PendingReports:
    """Where unclassified reports wait, and how to classify them.

    ``classifier`` is asked on every drain, so a newly trained model is used
    from the next burst on. Two are the same when they name the same
    database: a burst stored through several ways in is drained once.
    """

    database_url: str
    classifier: Callable[[], Classifier | None] = field(compare=False)
    other_confidence: float = field(compare=False)


def classify_pending_reports(pending: PendingReports, on_counted: OnCounted | None = None) -> int:
    """Classify and count every unclassified report, a batch per transaction; returns how many."""
    classifier = pending.classifier()
    counted = 0
    while True:
        taken, by_category = classify_pending(classifier, pending.database_url, pending.other_confidence)
        if on_counted is not None:
            on_counted(by_category)
        counted += by_category.total()
        if taken < CLASSIFY_BATCH:
            return counted


class ClassificationWorker:
    """One daemon thread, started on the first wake, that drains unclassified reports after each burst."""

    def __init__(self, on_counted: OnCounted | None = None) -> None:
        self._on_counted = on_counted
        self._changed = threading.Condition()
        self._first: float | None = None
        self._last = 0.0
        self._pending: set[PendingReports] = set()
        self._thread: threading.Thread | None = None

    def wake(self, pending: PendingReports) -> None:
        """Note that reports were stored; the thread classifies them once the burst settles."""
        with self._changed:
            self._pending.add(pending)
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
            for pending in self._wait_for_a_settled_burst():
                try:
                    counted = classify_pending_reports(pending, self._on_counted)
                except Exception as error:  # the rows stay unclassified; the next wake or the catch-up job takes them
                    log.error("report classification failed; reports stay pending", **failure_fields(error))
                    continue
                log.info("reports classified", reports=counted)

    def _wait_for_a_settled_burst(self) -> set[PendingReports]:
        with self._changed:
            while True:
                if self._first is None:
                    self._changed.wait()
                    continue
                due = min(self._last + SETTLE_S, self._first + MAX_DELAY_S)
                if time.monotonic() >= due:
                    self._first = None
                    pending, self._pending = self._pending, set()
                    return pending
                self._changed.wait(due - time.monotonic())
