"""The bot's one way in for bug reports, whether they come by ``POST /reports`` or the Slack feedback channel.

A batch is stored first (redacted, hashed, inserted unclassified, answered
after one short commit) and classified afterwards by the process's one
:class:`~tools.reports.worker.ClassificationWorker`, which counts into the
bot's metrics. The scheduler's catch-up job drains what a dead replica left.
``POST /reports`` stores in the request's thread pool; a Slack message is
handed to this module's own intake thread (:func:`take_in_later`), so
redacting a long message never holds one of the threads Bolt acks Slack on.
Either way the redaction itself runs in a worker process
(:class:`~tools.reports.redaction_pool.RedactionPool`): it would otherwise
hold the GIL that ``/healthz`` and every Slack ack need.
:func:`finish_intake` stops both on SIGTERM, after what they were given.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

from bot.metrics import REPORTS_INGESTED, count_classified
from knowledge.config import Settings
from tools.reports.classifiers import configured_classifier
from tools.reports.intake import IncomingReport, IntakeResult, store_reports
from tools.reports.redaction_pool import RedactionPool
from tools.reports.worker import ClassificationWorker, PendingReports

classification = ClassificationWorker(on_counted=count_classified)


def _new_intake_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-intake")


_slack_intake = _new_intake_thread()
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


def take_in_later(reports: list[IncomingReport], source: str, settings: Settings) -> Future[IntakeResult]:
    """Store a batch on the intake thread, in arrival order; the future holds what :func:`take_in` returned."""
    return _slack_intake.submit(take_in, reports, source, settings)


def finish_intake() -> None:
    """Store the Slack messages already handed over, then stop the redaction workers (on SIGTERM).

    Call it once no request can bring new reports: after the server stopped
    taking requests and Bolt's listener threads finished. A server started
    again in the same process (the tests) gets a fresh intake thread.
    """
    global _slack_intake
    finished, _slack_intake = _slack_intake, _new_intake_thread()
    finished.shutdown(wait=True)
    _redaction.shutdown()
