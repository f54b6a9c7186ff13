"""Scheduled jobs: the weekly digest, spike and data-quality checks, report catch-up, the retention purges
(reports, and the threads' remembered conversations),
polls of the tracked repositories (``CULPRIT_REPOS``, every ``CULPRIT_POLL_SECONDS``), syncs of the
wiki sources (``CULPRIT_WIKI_SOURCES``, every ``CULPRIT_WIKI_SYNC_MINUTES``), the weekly retrain,
and sending again the answers Slack refused (``bot.outbox``).

Every replica runs the same scheduler. Jobs that post claim their right to in
the database first (:mod:`knowledge.claims`: one claim per ISO week and
channel, one per ``Alert`` episode), so a digest or an alert is posted once
however many replicas fire; an alert Slack refuses is given back for the next
run. Posting goes through ``post(channel, text, blocks, chart_png)``, which
the Slack layer provides.

A scheduler killed between claiming a digest and posting it must not lose the
week: its claim stays unposted, the restarted process takes it over (on the
same host the dead holder's process is gone; elsewhere the claim's lease runs
out) and posts it when it catches up on missed digests, at start and every
few minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.auto_investigations import forget_old_investigations
from bot.metrics import ALERTS_POSTED, CHANGES_INGESTED, DIGESTS_POSTED, count_classified
from bot.outbox import INTERVAL_SECONDS, send_unsent_replies
from bot.report_intake import pending_reports
from bot.retraining import scheduled_retrain
from graph.memory import forget_old_threads
from knowledge.claims import THIS_PROCESS, claim, finish, is_done
from knowledge.config import Settings
from knowledge.db import failure_fields, utcnow
from knowledge.incidents import forget_old_deliveries
from knowledge.sources.polling import poll_repositories
from knowledge.outbox import forget_old_unsent
from tools.reports.data_quality import check_data_quality
from tools.reports.digest import build_digest, iso_week
from tools.reports.intake import purge_expired_reports
from tools.reports.spikes import alert_text, check_spikes, claim_alert, release_alert, unposted_alerts
from tools.reports.worker import classify_pending_reports

if TYPE_CHECKING:
    from slack_sdk import WebClient

Post = Callable[[str, str, list[dict[str, Any]], bytes | None], Any]
log = structlog.get_logger(__name__)

WEEKLY_DIGESTS = "weekly_digest"  # claims keyed "<ISO week>:<channel>", done once posted
CLAIM_LEASE = timedelta(minutes=15)
CATCH_UP_MINUTES = 5


def digest_key(week: str, channel: str) -> str:
    return f"{week}:{channel}"


def digest_end(due: datetime) -> date:
    """The last day the digest due at ``due`` (in the digest's zone) covers: the day before, in that zone, unless
    that day is not over yet in UTC, where the daily counts cut their days (a zone ahead of UTC, an hour before its
    offset: Monday 09:00 in Auckland is Sunday 21:00 UTC). Ending on such a day counted part of it, and its last
    hours went into no digest; ending the day before, every day is counted whole, in exactly one digest."""
    return min(due.date(), due.astimezone(UTC).date()) - timedelta(days=1)


def post_weekly_digest(post: Post, settings: Settings, due: datetime | None = None) -> bool:
    """Post the digest due at ``due`` (default now) unless another replica already claimed it; True when this one
    posted."""
    url = settings.resolved_database_url
    channel = settings.digest_channel
    if not channel:
        return False
    end = digest_end(due or utcnow().astimezone(ZoneInfo(settings.digest_timezone)))
    # An unposted claim whose holder died is taken over, by one caller only.
    if not claim(WEEKLY_DIGESTS, digest_key(iso_week(end), channel), url, lease=CLAIM_LEASE):
        log.info("digest already claimed", week=iso_week(end), channel=channel)
        return False
    from tools.rca.resources import answer_threshold  # loads the model: only when a digest is due

    digest = build_digest(end, url, min_confidence=answer_threshold(settings))
    post(channel, digest.text, digest.blocks, digest.chart_png)
    finish(WEEKLY_DIGESTS, digest_key(digest.week, channel), url)
    DIGESTS_POSTED.inc()
    log.info("digest posted", week=digest.week, channel=channel)
    return True


def last_digest_time(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The most recent time the weekly digest was due, within the last eight days."""
    due = trigger.get_next_fire_time(None, now - timedelta(days=8))
    last = None
    while due is not None and due <= now:
        last = due
        due = trigger.get_next_fire_time(due, due + timedelta(seconds=1))
    return last


def post_missed_digest(post: Post, trigger: CronTrigger, settings: Settings) -> bool:
    """Post the last due digest if no one has: the scheduler was down, or died while posting it."""
    channel = settings.digest_channel
    due = last_digest_time(trigger, utcnow().astimezone(trigger.timezone))
    if not channel or due is None:
        return False
    week = iso_week(digest_end(due))
    if is_done(WEEKLY_DIGESTS, digest_key(week, channel), settings.resolved_database_url):
        return False
    return post_weekly_digest(post, settings, due=due)


def post_new_alerts(post: Post, settings: Settings) -> int:
    """Check yesterday and today for spikes and intake problems, then post each new episode once.

    A check that fails (one bad day, a database error in one query) does not hold back the alerts already
    recorded: they are posted first, then the checks' failures are raised together so the run shows as failed.
    """
    url = settings.resolved_database_url
    today = utcnow().date()
    checks = [(f"spikes on {day}", partial(check_spikes, day, url)) for day in (today - timedelta(days=1), today)]
    failures = run_alert_checks([*checks, ("data quality", partial(check_data_quality, url=url))])
    posted = post_unposted_alerts(post, settings.alerts_channel, url) if settings.alerts_channel else 0
    if failures:
        raise ExceptionGroup("alert checks failed; the alerts already recorded were posted", failures)
    return posted


def run_alert_checks(checks: list[tuple[str, Callable[[], object]]]) -> list[Exception]:
    """Run every check, each whatever the others did; returns the failures, each logged with the check's name."""
    failures = []
    for name, check in checks:
        try:
            check()
        except Exception as error:
            log.error("alert check failed", check=name, **failure_fields(error))
            failures.append(error)
    return failures


def post_unposted_alerts(post: Post, channel: str, url: str) -> int:
    """Post each alert no replica has claimed yet, once; an alert Slack refuses is given back for the next run."""
    posted = 0
    for alert in unposted_alerts(url):
        if claim_alert(alert.id, url):
            try:
                post(channel, alert_text(alert), [], None)
            except Exception:  # Slack refused it: give the alert back for the next run instead of losing it
                release_alert(alert.id, url)
                raise
            ALERTS_POSTED.labels(kind=alert.kind).inc()
            posted += 1
    return posted


def poll_tracked_repositories(settings: Settings) -> int:
    """Fetch and ingest every tracked repository whose poll slot this replica wins; returns the changes stored.

    The job waits for its polls at most half an interval, so a slow fetch (which goes on in its thread, its
    changes stored but not counted here) never makes the scheduler skip the next tick for the others."""
    results = poll_repositories(
        settings.repos, settings.mirrors_dir, settings.resolved_database_url, settings.poll_seconds,
        wait_s=settings.poll_seconds / 2,
    )
    new = sum(result.new for result in results)
    CHANGES_INGESTED.labels(way="poll").inc(new)
    return new


def sync_configured_wiki_sources(settings: Settings) -> int:
    """Re-sync every wiki source in CULPRIT_WIKI_SOURCES whose slot this replica wins; returns sections embedded."""
    import os

    from knowledge.wiki.sources import sync_wiki_sources
    from knowledge.wiki.store import configured_wiki

    results = sync_wiki_sources(
        settings.wiki_sources, configured_wiki(settings), settings.resolved_database_url,
        settings.wiki_sync_minutes, os.environ, settings.incident_channel_pattern,
    )  # fmt: skip
    return sum(result.counts.get("added", 0) + result.counts.get("updated", 0) for result in results)


def add_interval_job(scheduler: BackgroundScheduler, func: Callable[..., Any], seconds: int, **job: Any) -> None:
    """Run ``func`` every ``seconds``, late rather than not at all.

    APScheduler 3 skips a run that starts more than ``misfire_grace_time`` after its time (1 s by default) with
    only a "missed by" warning; a run late by up to a whole interval still runs, and runs piled up while the
    scheduler was busy run once (``coalesce``), never two at a time (``max_instances``)."""
    scheduler.add_job(
        func, "interval", seconds=seconds, misfire_grace_time=seconds, coalesce=True, max_instances=1, **job
    )


def build_scheduler(post: Post, settings: Settings, client: WebClient | None = None) -> BackgroundScheduler:
    """The bot's scheduler (not started): weekly digest and its catch-up, hourly alert checks, report catch-up,
    nightly purges; with a Web API ``client``, also the unsent answers, every ``INTERVAL_SECONDS``.

    Every job has a thread of its own (:func:`one_thread_per_job`), so long ones (a poll, a wiki sync, the
    retrain) never hold the others past their start."""
    url = settings.resolved_database_url
    zone = ZoneInfo(settings.digest_timezone)
    scheduler = BackgroundScheduler(timezone=zone)
    scheduler.add_job(
        post_weekly_digest,
        CronTrigger(day_of_week=settings.digest_day_of_week, hour=settings.digest_hour, timezone=zone),
        kwargs={"post": post, "settings": settings},
        id="weekly_digest",
        misfire_grace_time=3600,
        coalesce=True,
    )
    add_interval_job(  # at start, then every few minutes: a digest missed while no scheduler ran is posted late
        scheduler, post_missed_digest, CATCH_UP_MINUTES * 60, next_run_time=utcnow(), id="missed_digest",
        kwargs={"post": post, "trigger": scheduler.get_job("weekly_digest").trigger, "settings": settings},
    )  # fmt: skip
    scheduler.add_job(
        post_new_alerts, CronTrigger(minute=5, timezone=zone), kwargs={"post": post, "settings": settings},
        id="report_alerts", coalesce=True, misfire_grace_time=600,
    )
    add_interval_job(  # reports a crashed replica stored but never classified
        scheduler, classify_pending_reports, 60,
        kwargs={"pending": pending_reports(settings, url), "on_counted": count_classified}, id="report_classification",
    )  # fmt: skip
    scheduler.add_job(
        purge_expired_reports, CronTrigger(hour=3, minute=17, timezone=zone),
        kwargs={"retention_days": settings.report_retention_days, "url": url},
        id="report_retention", coalesce=True, misfire_grace_time=3600,
    )
    scheduler.add_job(  # exactly once per week across replicas (a claim), verdict to the ops channel
        scheduled_retrain,
        CronTrigger(day_of_week=settings.retrain_day_of_week, hour=settings.retrain_hour, timezone=zone),
        kwargs={"post": post, "settings": settings}, id="model_retrain", coalesce=True, misfire_grace_time=6 * 3600,
    )
    scheduler.add_job(  # threads that remember (graph.memory) forget after the retention period
        forget_old_threads, CronTrigger(hour=3, minute=47, timezone=zone),
        kwargs={"database_url": url, "retention": timedelta(days=settings.thread_retention_days)},
        id="thread_retention", coalesce=True, misfire_grace_time=3600,
    )
    scheduler.add_job(
        forget_old_deliveries, CronTrigger(hour=3, minute=27, timezone=zone), kwargs={"url": url},
        id="slack_delivery_retention", coalesce=True, misfire_grace_time=3600,
    )
    scheduler.add_job(
        forget_old_investigations, CronTrigger(hour=3, minute=57, timezone=zone), kwargs={"url": url},
        id="auto_investigation_retention", coalesce=True, misfire_grace_time=3600,
    )
    if settings.repos:
        add_interval_job(
            scheduler, poll_tracked_repositories, settings.poll_seconds, next_run_time=utcnow(),
            kwargs={"settings": settings}, id="repository_polls",
        )  # fmt: skip
    if settings.wiki_sources:
        add_interval_job(
            scheduler, sync_configured_wiki_sources, settings.wiki_sync_minutes * 60, next_run_time=utcnow(),
            kwargs={"settings": settings}, id="wiki_source_syncs",
        )  # fmt: skip
    if client is not None:
        add_interval_job(
            scheduler, send_unsent_replies, INTERVAL_SECONDS, kwargs={"client": client, "url": url}, id="unsent_replies"
        )
        scheduler.add_job(
            forget_old_unsent, CronTrigger(hour=3, minute=37, timezone=zone), kwargs={"url": url},
            id="unsent_replies_retention", coalesce=True, misfire_grace_time=3600,
        )
    one_thread_per_job(scheduler)
    return scheduler


def one_thread_per_job(scheduler: BackgroundScheduler) -> None:
    """Give the scheduler as many threads as it has jobs (each runs one instance at a time).

    APScheduler's default pool has 10 threads: with more jobs, and long ones holding threads, a job due meanwhile
    waited in the pool's queue and, starting more than its misfire grace late, was skipped."""
    scheduler.add_executor(ThreadPoolExecutor(max_workers=len(scheduler.get_jobs())), "default")


def start_scheduler(post: Post, settings: Settings, client: WebClient | None = None) -> BackgroundScheduler:
    """Run the jobs in this process (``culprit serve`` without ``--no-scheduler``), catching up at once."""
    scheduler = build_scheduler(post, settings, client)
    scheduler.start()
    log.info("scheduler started", replica=THIS_PROCESS, jobs=[job.id for job in scheduler.get_jobs()])
    return scheduler
