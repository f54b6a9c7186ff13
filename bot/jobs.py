"""Scheduled jobs: the weekly digest, spike and data-quality checks, and the retention purge.

Every replica runs the same scheduler. Jobs that post claim their right to in
the database first (a ``DigestRun`` row per ISO week and channel, an ``Alert``
row per episode), so a digest or an alert is posted once however many replicas
fire. Posting goes through ``post(channel, text, blocks, chart_png)``, which
the Slack layer provides.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.exc import IntegrityError

from knowledge.config import get_settings
from knowledge.db import session_scope, utcnow
from knowledge.reports import DigestRun
from tools.data_quality import check_data_quality
from tools.digest import build_digest, iso_week
from tools.report_intake import purge_expired_reports
from tools.spikes import alert_text, check_spikes, claim_alert, unposted_alerts

Post = Callable[[str, str, list[dict[str, Any]], bytes | None], Any]
log = structlog.get_logger(__name__)


def claim_digest(week: str, channel: str, url: str | None = None, replica: str | None = None) -> bool:
    """True for exactly one caller per (ISO week, channel), across processes and replicas."""
    try:
        with session_scope(url) as session:
            session.add(DigestRun(iso_week=week, channel=channel, claimed_by=replica or socket.gethostname()))
    except IntegrityError:
        return False
    return True


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
    return True


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
            posted += 1
    return posted


def build_scheduler(post: Post, url: str | None = None) -> BackgroundScheduler:
    """The bot's scheduler (not started): weekly digest, hourly alert checks, nightly purge."""
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
    scheduler.add_job(
        purge_expired_reports, CronTrigger(hour=3, minute=17, timezone=zone), kwargs={"url": url},
        id="report_retention", coalesce=True, misfire_grace_time=3600,
    )
    return scheduler
