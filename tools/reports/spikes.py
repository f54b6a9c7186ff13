"""Spike detection: is today's count for a category far above what that category usually sees on this weekday?

The baseline is the category's median level over the previous four weeks
times the weekday's share of all reports, so weekend peaks are not spikes and one past
outage does not inflate it. A
day is a spike when a Poisson test against that baseline is very unlikely
(p < 1e-5) and the count is at least double the baseline plus six reports,
so a quiet category going from 1 to 4 does not page anyone. Each spike is one
``Alert`` episode: a category that stays high on the following days extends it
and is not posted again (as does the day before, spiking once its late reports arrive).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from statistics import median
from typing import Any

import numpy as np
from scipy.stats import poisson
from sklearn.feature_extraction.text import TfidfVectorizer
from sqlalchemy import String, cast, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from knowledge.claims import Claim, claim, release
from knowledge.db import session_scope
from knowledge.reports import Alert, BugReport, CategoryDaily
from tools.reports.classifiers import OTHER
from tools.reports.display import NAME_CHARS, mrkdwn, one_line

P_VALUE = 1e-5
MIN_RATIO = 2.0
MIN_EXCESS = 6
WEEKS = 4
EXAMPLE_CHARS = 300  # of each report an alert quotes: enough to see what users say, one line each
ALERT_POSTS = "alert"  # claims keyed on the alert id, taken before posting it


@dataclass(frozen=True)
class SpikeVerdict:
    category: str
    day: date
    count: int
    baseline: float
    p_value: float


def weekday_factors(totals: dict[date, int], day: date, first_day: date) -> dict[int, float] | None:
    """How busy each weekday is relative to the average, from all reports over the previous weeks.

    Usage drives the weekly rhythm of every category alike, so the factors come
    from the total, which has enough reports to be stable; per weekday they take
    the median, so one outage day does not shift them. None until three weeks
    of history exist.
    """
    window = _window(day, first_day)
    if len(window) < 21:
        return None
    by_weekday: dict[int, list[int]] = {}
    for past in window:
        by_weekday.setdefault(past.weekday(), []).append(totals.get(past, 0))
    typical = {weekday: float(median(values)) for weekday, values in by_weekday.items()}
    average = sum(typical.values()) / len(typical)
    if average == 0:
        return None
    return {weekday: max(value / average, 0.2) for weekday, value in typical.items()}


def weekday_baseline(history: dict[date, int], day: date, first_day: date, factors: dict[int, float]) -> float:
    """Expected count on ``day``: the median of the deseasonalised counts, times the weekday factor."""
    window = _window(day, first_day)
    level = median(history.get(past, 0) / factors[past.weekday()] for past in window)
    return float(level * factors[day.weekday()])


def _window(day: date, first_day: date) -> list[date]:
    days = (day - timedelta(days=k) for k in range(1, 7 * WEEKS + 1))
    return [past for past in days if past >= first_day]


def spike_verdict(count: int, baseline: float) -> tuple[bool, float]:
    """The Poisson tail probability of ``count`` or more, and whether it counts as a spike."""
    rate = max(baseline, 1.0)
    p_value = float(poisson.sf(count - 1, rate))
    return p_value < P_VALUE and count >= MIN_RATIO * rate + MIN_EXCESS, p_value


def find_spikes(counts: dict[str, dict[date, int]], day: date, first_day: date) -> list[SpikeVerdict]:
    """Every category whose count on ``day`` is a spike against its own weekday baseline."""
    totals: dict[date, int] = {}
    for history in counts.values():
        for past, count in history.items():
            totals[past] = totals.get(past, 0) + count
    factors = weekday_factors(totals, day, first_day)
    if factors is None:
        return []
    verdicts = []
    for category, history in sorted(counts.items()):
        if category == OTHER:
            continue
        baseline = weekday_baseline(history, day, first_day, factors)
        count = history.get(day, 0)
        spiking, p_value = spike_verdict(count, baseline)
        if spiking:
            verdicts.append(SpikeVerdict(category, day, count, baseline, p_value))
    return verdicts


def daily_counts(session: Session, start: date, end: date) -> dict[str, dict[date, int]]:
    """Counts per category per day in [start, end] from the long-retention table."""
    rows = session.execute(
        select(CategoryDaily.category, CategoryDaily.day, CategoryDaily.count).where(
            CategoryDaily.day >= start, CategoryDaily.day <= end
        )
    ).all()
    counts: dict[str, dict[date, int]] = {}
    for category, day, count in rows:
        counts.setdefault(category, {})[day] = count
    return counts


def check_spikes(day: date, url: str) -> list[Alert]:
    """Record spikes on ``day``; returns only the alerts that started a new episode (to post)."""
    with session_scope(url) as session:
        first_day = session.scalar(select(func.min(CategoryDaily.day)))
        if first_day is None:
            return []
        counts = daily_counts(session, day - timedelta(days=7 * WEEKS), day)
        new_alerts = []
        for verdict in find_spikes(counts, day, first_day):
            details = {
                "count": verdict.count,
                "baseline": verdict.baseline,
                "p_value": verdict.p_value,
                "examples": representative_reports(session, verdict.category, day),
            }
            alert = record_episode(session, "spike", verdict.category, day, details)
            if alert is not None:
                new_alerts.append(alert)
        return new_alerts


def record_episode(session: Session, kind: str, key: str, day: date, details: dict[str, Any]) -> Alert | None:
    """Extend the episode that was live the day before, that day or the day after, or start one (returned, to be
    posted). The day after counts: a day's late reports can make it spike only once the next day's check has
    started the episode, and a second episode posted the same outage twice."""
    live = session.scalar(
        select(Alert)
        .where(Alert.kind == kind, Alert.key == key, Alert.last_seen_on >= day - timedelta(days=1))
        .where(Alert.started_on <= day + timedelta(days=1))
        .order_by(Alert.started_on.desc())
        .limit(1)
    )
    if live is not None:
        live.last_seen_on = max(live.last_seen_on, day)
        return None
    alert = Alert(kind=kind, key=key, started_on=day, last_seen_on=day, details=details)
    try:
        with session.begin_nested():
            session.add(alert)
    except IntegrityError:  # another replica recorded the same episode a moment ago
        return None
    return alert


def representative_reports(session: Session, category: str, day: date, k: int = 3) -> list[str]:
    """The ``k`` redacted reports closest to the day's TF-IDF centroid: what most users said."""
    texts = list(
        session.scalars(
            select(BugReport.text)
            .where(BugReport.category == category)
            .where(BugReport.created_at >= _midnight(day), BugReport.created_at < _midnight(day + timedelta(days=1)))
            .limit(500)
        )
    )
    if len(texts) <= k:
        return texts
    try:
        matrix = TfidfVectorizer().fit_transform(texts)
    except ValueError:  # no words at all (every text redacted away)
        return texts[:k]
    centroid = np.asarray(matrix.mean(axis=0)).ravel()
    closeness = matrix @ centroid
    return [texts[i] for i in np.argsort(-closeness)[:k]]


def unposted_alerts(url: str) -> list[Alert]:
    """Alerts no replica has claimed yet."""
    claimed = select(Claim.key).where(Claim.scope == ALERT_POSTS)
    with session_scope(url) as session:
        return list(session.scalars(select(Alert).where(cast(Alert.id, String).not_in(claimed)).order_by(Alert.id)))


def claim_alert(alert_id: int, url: str) -> bool:
    """Claim the right to post an alert; True for exactly one caller, so replicas never post it twice."""
    return claim(ALERT_POSTS, str(alert_id), url)


def release_alert(alert_id: int, url: str) -> None:
    """Give back the claim on an alert that could not be posted, so the next run posts it."""
    release(ALERT_POSTS, str(alert_id), url)


def alert_text(alert: Alert) -> str:
    """The message responders read: what spiked, by how much, and what users are saying."""
    details = alert.details or {}
    if alert.kind == "spike":
        lines = [
            f":rotating_light: Spike in *{mrkdwn(one_line(alert.key, NAME_CHARS))}* reports on {alert.started_on}: "
            f"{details.get('count')} reports vs a usual {float(details.get('baseline', 0)):.1f} on this weekday."
        ]
    else:
        lines = [f":warning: Report intake: {details.get('message', alert.key)}"]
    lines += [f"> {mrkdwn(one_line(str(example), EXAMPLE_CHARS))}" for example in details.get("examples", [])]
    return "\n".join(lines)


def _midnight(day: date) -> Any:
    from datetime import UTC, datetime, time

    return datetime.combine(day, time(), UTC)
