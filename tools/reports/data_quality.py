"""Checks that the report stream itself is healthy: a silent intake or a flood of ``other`` hides real spikes."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from knowledge.db import session_scope, utcnow
from knowledge.reports import Alert, BugReport
from tools.reports.classifiers import OTHER
from tools.reports.spikes import daily_counts, record_episode

STOPPED_AFTER = timedelta(hours=24)
MIN_REPORTS_FOR_SHARE = 20


def check_data_quality(now: datetime | None = None, *, url: str) -> list[Alert]:
    """New data-quality alerts (one per episode): intake stopped, or the share of ``other`` jumped."""
    now = now or utcnow()
    today = now.date()
    new_alerts = []
    with session_scope(url) as session:
        last_seen = session.scalar(select(func.max(BugReport.ingested_at)))
        recent_week = session.scalar(
            select(func.count()).select_from(BugReport).where(BugReport.ingested_at >= now - timedelta(days=8))
        )
        if last_seen is not None and recent_week and now - last_seen > STOPPED_AFTER:
            hours = int((now - last_seen).total_seconds() // 3600)
            message = f"no reports have arrived for {hours} hours (last at {last_seen:%Y-%m-%d %H:%M} UTC)"
            alert = record_episode(session, "intake_stopped", "reports", today, {"message": message})
            if alert is not None:
                new_alerts.append(alert)
        jump = other_share_jump(daily_counts(session, today - timedelta(days=14), today), today)
        if jump is not None:
            share, usual = jump
            message = f"{share:.0%} of today's reports are 'other' (usually {usual:.0%}): new kinds of reports or a broken classifier"
            alert = record_episode(session, "other_share", OTHER, today, {"message": message, "share": share, "usual": usual})
            if alert is not None:
                new_alerts.append(alert)
    return new_alerts


def other_share_jump(counts: dict[str, dict[date, int]], day: date) -> tuple[float, float] | None:
    """(today's share, usual share) when today's ``other`` share is well above the previous two weeks'."""
    total_today = sum(history.get(day, 0) for history in counts.values())
    if total_today < MIN_REPORTS_FOR_SHARE:
        return None
    share = counts.get(OTHER, {}).get(day, 0) / total_today
    before_total = sum(c for history in counts.values() for d, c in history.items() if d < day)
    before_other = sum(c for d, c in counts.get(OTHER, {}).items() if d < day)
    usual = before_other / before_total if before_total else 0.0
    return (share, usual) if share >= max(2 * usual, usual + 0.15) else None
