"""How fresh each change source is for one incident, and whether an answer can trust it.

An answer with no culprit means little if culprit has not heard from a
repository since hours before the incident began: then the answer says the
data is stale and how to fix it, instead of reporting a low confidence as if
the incident were hard. A source is stale for an incident when it was last
known complete more than ``STALE_POLLS`` poll intervals before the incident
started. Only sources someone keeps current can be judged so: polled
repositories and repositories ingested by hand; event sources push what they
have, and history files loaded once describe the past they cover.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from knowledge.db import session_scope, utcnow
from knowledge.sources.freshness import BY_HAND, EVENTS, KEPT_CURRENT, POLLED, SourceState, source_states
from tools.rca.answers import IncidentQuery, SourceFreshness

STALE_POLLS = 3


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for limit, unit, size in ((90, "s", 1), (90 * 60, "min", 60), (48 * 3600, "h", 3600)):
        if seconds < limit:
            return f"{round(seconds / size)} {unit}"
    return f"{round(seconds / 86400)} d"


def _fix(state: SourceState, poll_seconds: int) -> str:
    if state.kind == POLLED and state.error:
        return f"polling {state.source} fails ({state.error}): fix its entry in CULPRIT_REPOS or its token"
    if state.kind == POLLED:
        return "no poll has run since: start `culprit serve` with its scheduler, or run `culprit ingest repos`"
    return (
        f"run `culprit ingest git` on {state.source} again, or add it to CULPRIT_REPOS "
        f"to have it polled every {poll_seconds} s"
    )


def describe(state: SourceState, now: datetime) -> str:
    """``acme/web: changes known up to 40 s ago`` and its kin, for one source."""
    if state.kind in (POLLED, BY_HAND) and state.checked_at is not None:
        how = "polled" if state.kind == POLLED else "ingested by hand"
        failing = "; the last poll failed" if state.error else ""
        return f"{state.source}: changes known up to {_ago((now - state.checked_at).total_seconds())} ago ({how}{failing})"
    if state.kind == POLLED:
        return f"{state.source}: not polled successfully yet ({state.error or 'waiting for the first poll'})"
    newest = f"{_ago((now - state.newest_change_at).total_seconds())} ago" if state.newest_change_at else "never"
    if state.kind == EVENTS:
        return f"{state.source}: last change event {newest}"
    return f"{state.source}: loaded from files, newest change {newest}"


def source_freshness(query: IncidentQuery, database_url: str, poll_seconds: int) -> list[SourceFreshness]:
    """Every source the incident's candidates come from (its repository only, when it names one)."""
    now = utcnow()
    allowed_lag = timedelta(seconds=STALE_POLLS * poll_seconds)
    with session_scope(database_url) as session:
        states = source_states(session)
    found = []
    for state in states:
        if query.repo and state.source != query.repo and state.kind != EVENTS:
            continue
        kept_current = state.kind in KEPT_CURRENT
        stale = kept_current and (state.checked_at is None or state.checked_at < query.started_at - allowed_lag)
        found.append(
            SourceFreshness(
                source=state.source,
                kind=state.kind,
                known_up_to=state.checked_at,
                summary=describe(state, now),
                stale=stale,
                fix=_fix(state, poll_seconds) if stale else "",
            )
        )
    return found
