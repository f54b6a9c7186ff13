"""Prometheus metrics for the bot process, served at ``/metrics``.

Names follow Prometheus conventions (base units, ``_total`` counters) so the
dashboards in deploy/ can be written against them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tools.rca.answers import RcaAnswer

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60)

REQUEST_SECONDS = Histogram(
    "culprit_http_request_seconds",
    "Time to answer an HTTP request, by route template ('other' for unknown paths); for /slack/events the ack.",
    ["path", "status"],
    buckets=LATENCY_BUCKETS,
)
ANSWER_SECONDS = Histogram(
    "culprit_answer_seconds",
    "From a responder's request to the answer posted in Slack.",
    ["kind", "outcome"],
    buckets=LATENCY_BUCKETS,
)
RCA_STAGE_SECONDS = Histogram(
    "culprit_rca_stage_seconds",
    "Time spent in each stage of the RCA pipeline.",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
JUDGE_FALLBACKS = Counter(
    "culprit_judge_fallbacks_total",
    "Answers in which the LLM judge failed and the local judge stood in.",
)
CONFIDENCE = Histogram(
    "culprit_rca_confidence",
    "Calibrated confidence of each RCA answer.",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)
SIGNAL_FAILURES = Counter(
    "culprit_rca_signal_failures_total",
    "Answers given without one signal's evidence because that signal raised.",
    ["signal"],
)
FEEDBACK_VOTES = Counter("culprit_feedback_votes_total", "Thumbs up/down clicks stored.", ["vote"])
REQUESTS_DROPPED = Counter(
    "culprit_slack_requests_dropped_total",
    "Slack requests dropped unanswered: by the guards (malformed, bot, user, channel, duplicate, rate) "
    "or, for channel messages, because they are not bug reports (not_a_report).",
    ["reason"],
)
REPORTS_INGESTED = Counter("culprit_reports_ingested_total", "Bug reports stored.", ["source"])
REPORTS_CLASSIFIED = Counter(
    "culprit_reports_classified_total", "Bug reports stored, by the category they were given.", ["category"]
)
INVESTIGATIONS_STOPPED = Counter(
    "culprit_investigations_stopped_total",
    "Timed-out investigations that gave their worker back, by the stage they stopped before "
    "('queued' when they never started).",
    ["stage"],
)
UNSENT_REPLIES = Counter(
    "culprit_unsent_replies_total",
    "Answers Slack refused after the retries: kept in the outbox, then delivered, refused again, or given up.",
    ["outcome"],
)
ALERTS_POSTED = Counter("culprit_alerts_posted_total", "Spike and data-quality alerts posted.", ["kind"])
INVESTIGATIONS_TRIGGERED = Counter(
    "culprit_investigations_triggered_total",
    "Investigations nobody asked for: a new incident channel, PagerDuty, POST /incidents; duplicates start none, "
    "not_started counts those given back (reply queue full, or Slack refused the first post) for a retry, "
    "and still_starting deliveries of one another delivery claimed and has not posted yet.",
    ["outcome"],
)
DIGESTS_POSTED = Counter("culprit_digests_posted_total", "Weekly digests posted (once per week and channel).")

CHANGES_INGESTED = Counter(
    "culprit_changes_ingested_total", "Changes stored, by the way they came (poll, webhook, events).", ["way"]
)
WEBHOOK_DELIVERIES = Counter(
    "culprit_webhook_deliveries_total",
    "Signed webhook deliveries by source and outcome (stored, ignored, duplicate, still_storing).",
    ["source", "outcome"],
)


class SourceLag(Collector):
    """``culprit_source_lag_seconds``: how old each source's knowledge is, read from the store at each scrape.

    A polled repository's lag is the time since its last good poll; a source
    nothing checks is as old as its newest change.
    """

    def __init__(self) -> None:
        self.database_url: str | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from knowledge.db import session_scope, utcnow
        from knowledge.sources.freshness import source_states

        family = GaugeMetricFamily(
            "culprit_source_lag_seconds", "Seconds since each change source was last known complete.", labels=["source", "kind"]
        )
        if self.database_url:
            now = utcnow()
            try:
                with session_scope(self.database_url) as session:
                    states = source_states(session)
            except Exception:  # noqa: BLE001 - an unreachable store must not take the other metrics down
                states = []
            for state in states:
                known = state.checked_at or state.newest_change_at
                if known is not None:
                    family.add_metric([state.source, state.kind], max(0.0, (now - known).total_seconds()))
        yield family


SOURCE_LAG = SourceLag()
REGISTRY.register(SOURCE_LAG)


def observe_answer(answer: RcaAnswer) -> None:
    """Record what one RCA answer says about the pipeline's health."""
    CONFIDENCE.observe(answer.confidence)
    for stage, milliseconds in answer.timings_ms.items():
        RCA_STAGE_SECONDS.labels(stage=stage).observe(milliseconds / 1000)
    # rca_graph notes "some batches were ranked by <fallback> instead of <judge>".
    if any("instead of" in note for note in answer.notes):
        JUDGE_FALLBACKS.inc()
    for missing in answer.unavailable_evidence:
        SIGNAL_FAILURES.labels(signal=missing.signal).inc()


def count_classified(by_category: Mapping[str, int]) -> None:
    """Count a batch of reports the classification worker committed, by the category each was given."""
    for category, count in by_category.items():
        REPORTS_CLASSIFIED.labels(category=category).inc(count)
