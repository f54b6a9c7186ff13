"""Scheduled jobs: the weekly digest, spike and data-quality checks, report catch-up and the retention purge.

Every replica runs the same scheduler. Jobs that post claim their right to in
the database first (a ``DigestRun`` row per ISO week and channel, an ``Alert``
row per episode), so a digest or an alert is posted once however many replicas
fire. Posting goes through ``post(channel, text, blocks, chart_png)``, which
the Slack layer provides.

A scheduler killed between claiming a digest and posting it must not lose the
week: its claim stays unposted, the restarted process takes it over (on the
same host the dead holder's process is gone; elsewhere the claim's lease runs
out) and posts it when it catches up on missed digests, at start and every
few minutes.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from bot.metrics import ALERTS_POSTED, DIGESTS_POSTED
from bot.reports_http import classify_pending_reports
from knowledge.config import get_settings
from knowledge.db import session_scope, utcnow
from knowledge.incidents import forget_old_deliveries
from knowledge.reports import DigestRun
from tools.reports.data_quality import check_data_quality
from tools.reports.digest import build_digest, iso_week
from tools.reports.intake import purge_expired_reports
from tools.reports.spikes import alert_text, check_spikes, claim_alert, unposted_alerts

Post = Callable[[str, str, list[dict[str, Any]], bytes | None], Any]
log = structlog.get_logger(__name__)

# host:pid:nonce, so a restarted container whose process has the same pid is still a new holder.
REPLICA = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
CLAIM_LEASE = timedelta(minutes=15)
CATCH_UP_MINUTES = 5


def claim_digest(week: str, channel: str, url: str | None = None, replica: str | None = None) -> bool:
    """True for exactly one caller per (ISO week, channel), across processes and replicas.

    An unposted claim whose holder died is taken over, by one caller only.
    """
    replica = replica or REPLICA
    try:
        with session_scope(url) as session:
            session.add(DigestRun(iso_week=week, channel=channel, claimed_by=replica))
    except IntegrityError:
        return _take_over_dead_claim(week, channel, replica, url)
    return True


def _take_over_dead_claim(week: str, channel: str, replica: str, url: str | None) -> bool:
    with session_scope(url) as session:
        run = session.get(DigestRun, (week, channel))
        if run is None or run.posted_at is not None:
            return False
        if not (_holder_is_gone(run.claimed_by) or run.claimed_at < utcnow() - CLAIM_LEASE):
            return False
        taken = session.execute(
            update(DigestRun)
            .where(
                DigestRun.iso_week == week,
                DigestRun.channel == channel,
                DigestRun.claimed_by == run.claimed_by,
                DigestRun.posted_at.is_(None),
            )
            .values(claimed_by=replica, claimed_at=utcnow())
        ).rowcount
    if taken:
        log.warning("took over an unposted digest claim", week=week, channel=channel, dead_holder=run.claimed_by)
    return taken == 1


def _holder_is_gone(claimed_by: str) -> bool:
    """True when the claim was made on this host by a process that no longer runs."""
    host, _, rest = claimed_by.partition(":")
    pid, _, _nonce = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit() or claimed_by == REPLICA:
        return False
    if int(pid) == os.getpid():
        return True  # an earlier life of this pid: the container restarted
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def post_weekly_digest(post: Post, today: date | None = None, url: str | None = None) -> bool:
    """Post last week's digest unless another replica already claimed it; True when this one posted."""
    settings = get_settings()
    channel = settings.digest_channel
    if not channel:
        return False
    today = today or utcnow().astimezone(ZoneInfo(settings.digest_timezone)).date()
    end = today - timedelta(days=1)
    if not claim_digest(iso_week(end), channel, url):
        log.info("digest already claimed", week=iso_week(end), channel=channel)
        return False
    digest = build_digest(end, url)
    post(channel, digest.text, digest.blocks, digest.chart_png)
    with session_scope(url) as session:
        run = session.get(DigestRun, (digest.week, channel))
        if run is not None:
            run.posted_at = utcnow()
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


def post_missed_digest(post: Post, trigger: CronTrigger, url: str | None = None) -> bool:
    """Post the last due digest if no one has: the scheduler was down, or died while posting it."""
    channel = get_settings().digest_channel
    due = last_digest_time(trigger, utcnow().astimezone(trigger.timezone))
    if not channel or due is None:
        return False
    with session_scope(url) as session:
        run = session.get(DigestRun, (iso_week(due.date() - timedelta(days=1)), channel))
        if run is not None and run.posted_at is not None:
            return False
    return post_weekly_digest(post, today=due.date(), url=url)


def post_new_alerts(post: Post, url: str | None = None) -> int:
    """Check yesterday and today for spikes and intake problems, then post each new episode once."""
    channel = get_settings().alerts_channel
    today = utcnow().date()
    for day in (today - timedelta(days=1), today):
        check_spikes(day, url)
    check_data_quality(url=url)
    if not channel:
        return 0
    posted = 0
    for alert in unposted_alerts(url):
        if claim_alert(alert.id, url):
            post(channel, alert_text(alert), [], None)
            ALERTS_POSTED.labels(kind=alert.kind).inc()
            posted += 1
    return posted


def build_scheduler(post: Post, url: str | None = None) -> BackgroundScheduler:
    """The bot's scheduler (not started): weekly digest, hourly alert checks, report catch-up, nightly purge."""
    settings = get_settings()
    zone = ZoneInfo(settings.digest_timezone)
    scheduler = BackgroundScheduler(timezone=zone)
    scheduler.add_job(
        post_weekly_digest,
        CronTrigger(day_of_week=settings.digest_day_of_week, hour=settings.digest_hour, timezone=zone),
        kwargs={"post": post, "url": url},
        id="weekly_digest",
        misfire_grace_time=3600,
        coalesce=True,
    )
    scheduler.add_job(
        post_new_alerts, CronTrigger(minute=5, timezone=zone), kwargs={"post": post, "url": url},
        id="report_alerts", coalesce=True, misfire_grace_time=600,
    )
    scheduler.add_job(  # reports a crashed replica stored but never classified
        classify_pending_reports, "interval", minutes=1, kwargs={"url": url},
        id="report_classification", coalesce=True, max_instances=1,
    )
    scheduler.add_job(
        purge_expired_reports, CronTrigger(hour=3, minute=17, timezone=zone), kwargs={"url": url},
        id="report_retention", coalesce=True, misfire_grace_time=3600,
    )
    scheduler.add_job(
        forget_old_deliveries, CronTrigger(hour=3, minute=27, timezone=zone), kwargs={"url": url},
        id="slack_delivery_retention", coalesce=True, misfire_grace_time=3600,
    )
    return scheduler


def start_scheduler(post: Post, url: str | None = None) -> BackgroundScheduler:
    """Run the jobs in this process (``culprit serve`` without ``--no-scheduler``), catching up at once."""
    scheduler = build_scheduler(post, url)
    scheduler.add_job(
        post_missed_digest,
        "interval",
        minutes=CATCH_UP_MINUTES,
        next_run_time=utcnow(),
        kwargs={"post": post, "trigger": scheduler.get_job("weekly_digest").trigger, "url": url},
        id="missed_digest",
        coalesce=True,
    )
    scheduler.start()
    log.info("scheduler started", replica=REPLICA, jobs=[job.id for job in scheduler.get_jobs()])
    return scheduler
