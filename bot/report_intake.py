"""The bot's one way in for bug reports, whether they come by ``POST /reports`` or the Slack feedback channel.

A batch is stored first (redacted, hashed, inserted unclassified, answered
after one short commit) and classified afterwards by the process's one
:class:`~tools.reports.worker.ClassificationWorker`, which counts into the
bot's metrics. The scheduler's catch-up job drains what a dead replica left.
``POST /reports`` stores in the request's thread pool; a Slack message is
handed to this module's own intake thread (:func:`take_in_later`), so
redacting a long message never holds one of the threads Bolt acks Slack on.
At most ``INTAKE_WAITING`` messages wait there: with a hung database a flood
of them would otherwise queue without end (the listener logs each one past
that by id, as not stored).
Either way the redaction itself runs in a worker process
(:class:`~tools.reports.redaction_pool.RedactionPool`): it would otherwise
hold the GIL that ``/healthz`` and every Slack ack need.
:func:`finish_intake` stops both on SIGTERM, after what they were given.

``POST /reports`` answers a database failure with an error its sender can
retry on; a Slack message has no sender waiting, so its intake tries again
after 1 s, 5 s and 30 s while the database is unreachable, and only then gives
the report up (the listener logs it as an error). Once the server is stopping
those waits are over: each report still queued, or waiting for its next try,
gets one last attempt at once, so a rolling restart during an outage is not
held up 36 s per report, and the reports that attempt could not store are
logged by id and count (never their text) before the process exits. Those
last attempts share the stop's grace: on a hung database each could wait out
its connect time-out in turn, so once the grace is spent the reports not
stored yet (the one on the database, those queued behind it) are given up and
logged by id, and those queued are never tried.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import partial

import structlog

from bot.metrics import REPORTS_INGESTED, count_classified
from bot.reply_queue import ReplyQueue
from knowledge.config import Settings
from knowledge.db import RETRY_DELAYS_S, database_failure, retry_while_unreachable
from tools.reports.classifiers import configured_classifier
from tools.reports.intake import IncomingReport, IntakeResult, store_reports
from tools.reports.redaction_pool import RedactionPool
from tools.reports.worker import ClassificationWorker, PendingReports

log = structlog.get_logger(__name__)

classification = ClassificationWorker(on_counted=count_classified)
INTAKE_WAITING = 100  # Slack messages handed over and not stored yet: a busy feedback channel's burst, not a flood


class _SlackIntake:
    """The intake thread for Slack messages, and what stopping it needs: a signal that cuts the retry
    waits short, and the ids of the reports not stored: those the last attempts could not store, and
    those handed over whose attempts have not ended (when the shutdown grace runs out)."""

    def __init__(self) -> None:
        self.queue = ReplyQueue(INTAKE_WAITING, runners=1, name="report-intake")
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._unsaved: list[str] = []
        self._open: dict[int, list[str]] = {}  # report ids by batch, from hand-over until its attempts end

    def handed_over(self, report_ids: list[str]) -> int:
        """Note a batch as not stored yet; returns its number for :meth:`ended`."""
        with self._lock:
            number = next(self._numbers)
            self._open[number] = report_ids
            return number

    def ended(self, number: int, unsaved: bool) -> None:
        """The batch's attempts are over; ``unsaved`` when its last one, at shutdown, failed."""
        with self._lock:
            report_ids = self._open.pop(number)
            if unsaved:
                self._unsaved.extend(report_ids)

    def not_stored(self) -> tuple[list[str], list[str]]:
        """(reports whose last attempt failed, reports whose attempts have not ended), by id."""
        with self._lock:
            return list(self._unsaved), [report_id for ids in self._open.values() for report_id in ids]


_slack_intake = _SlackIntake()
_redaction = RedactionPool()


def pending_reports(settings: Settings, database_url: str) -> PendingReports:
    """The unclassified reports in ``database_url``, classified as ``settings`` configure."""
    return PendingReports(database_url, partial(configured_classifier, settings), settings.other_confidence)


def take_in(reports: list[IncomingReport], source: str, settings: Settings) -> IntakeResult:
    """Store a batch unclassified and wake the worker; returns after the commit."""
    url = settings.resolved_database_url
    result = store_reports(reports, source, url, prepare=_redaction.prepared_rows)
    REPORTS_INGESTED.labels(source=source).inc(result.stored)
    if result.stored:
        classification.wake(pending_reports(settings, url))
    return result


def take_in_later(
    reports: list[IncomingReport],
    source: str,
    settings: Settings,
    delays: Sequence[float] = RETRY_DELAYS_S,
    wait: Callable[[float], object] | None = None,
) -> Future[IntakeResult] | None:
    """Store a batch on the intake thread, in arrival order; the future holds what :func:`take_in` returned.

    None, and nothing queued, when ``INTAKE_WAITING`` batches already wait (a slow or hung database).

    While the database is unreachable the batch is tried again after each of
    ``delays`` (``wait`` sleeps them; by default until :func:`finish_intake`
    starts, whichever comes first), holding the reports behind it in order; the
    future holds the last failure once they are spent. Once the intake is
    stopping, a batch gets one last attempt and no more waits.
    """
    intake = _slack_intake
    number = intake.handed_over([report.id for report in reports])
    stored = intake.queue.submit(
        partial(_take_in_retrying, reports, source, settings, delays, wait or intake.stopping.wait, intake, number)
    )
    if stored is None:
        intake.ended(number, unsaved=False)
    return stored


def _take_in_retrying(
    reports: list[IncomingReport], source: str, settings: Settings, delays: Sequence[float],
    wait: Callable[[float], object], intake: _SlackIntake, number: int,
) -> IntakeResult:  # fmt: skip
    def retrying(attempt: int, delay: float, error: Exception) -> None:
        log.warning("reports not stored; trying again", source=source, attempt=attempt, retry_in_s=delay, error=database_failure(error))

    unsaved = False
    try:
        return retry_while_unreachable(partial(take_in, reports, source, settings), delays, intake.stopping, retrying, wait)
    except Exception:  # whatever the cause, a report lost at shutdown is named in finish_intake's log
        unsaved = intake.stopping.is_set()
        raise
    finally:
        intake.ended(number, unsaved)


def finish_intake(grace_s: float) -> None:
    """Store the Slack messages already handed over, for at most ``grace_s``, then stop the redaction
    workers (on SIGTERM).

    Each report still queued or waiting to be tried again gets one last
    attempt, without the waits: the process is going away, and a database
    that is down now will not be back within a shutdown's grace period. The
    ids of those it could not store are logged with their count. Past
    ``grace_s`` (a hung database holds each attempt) the reports not stored
    yet are given up, logged the same way, and those not tried are dropped.

    Call it once no request can bring new reports: after the server stopped
    taking requests and Bolt's listener threads finished. A server started
    again in the same process (the tests) gets a fresh intake thread.
    """
    global _slack_intake
    finished, _slack_intake = _slack_intake, _SlackIntake()
    finished.stopping.set()
    finished.queue.drain(grace_s)
    unsaved, given_up = finished.not_stored()
    if unsaved:
        log.error("reports from slack not stored at shutdown", count=len(unsaved), report_ids=unsaved)
    if given_up:
        log.error("reports from slack not stored at shutdown: the grace ran out first", count=len(given_up),
                  report_ids=given_up, grace_s=grace_s)
    _redaction.shutdown()
