"""The answer already given in a Slack thread, read back from the database ("why #2?").

An RCA posted in a thread is stored as an incident (with the channel and
thread it was posted in) and its ranked suggestions with their evidence; a
follow-up question in the same thread reads them back rather than
investigating again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from knowledge.changes import Change
from knowledge.db import session_scope
from knowledge.incidents import Incident, Suggestion


_WORDS = re.compile(r"[a-z0-9]{3,}")
_STOP = frozenset("the and for what about that this change changes commit one with from".split())


@dataclass(frozen=True)
class SuggestionDetail:
    """One suggestion of a thread's answer with what the responder needs to check it."""

    incident_id: str
    rank: int
    ranks: int
    change_id: str
    title: str = ""
    author: str = ""
    services: tuple[str, ...] = ()
    confidence: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)


def thread_incident(channel: str, thread_ts: str, *, database_url: str) -> str | None:
    """The incident whose answer was posted last in this thread, if any."""
    with session_scope(database_url) as session:
        return session.scalars(
            select(Incident.id)
            .where(Incident.channel == channel, Incident.thread_ts == thread_ts)
            .order_by(Incident.created_at.desc())
            .limit(1)
        ).first()


def _latest(session: Any, incident_id: str) -> dict[int, Suggestion]:
    rows = session.scalars(select(Suggestion).where(Suggestion.incident_id == incident_id).order_by(Suggestion.rank))
    latest: dict[int, Suggestion] = {}
    for row in rows:  # a question asked again adds rows: the newest per rank is the answer shown
        if row.rank not in latest or row.id > latest[row.rank].id:
            latest[row.rank] = row
    return latest


def _detail(session: Any, incident_id: str, latest: dict[int, Suggestion], rank: int) -> SuggestionDetail:
    chosen = latest.get(rank)
    if chosen is None:
        return SuggestionDetail(incident_id, 0, len(latest), "")
    change = session.get(Change, chosen.change_id)
    return SuggestionDetail(
        incident_id=incident_id,
        rank=rank,
        ranks=len(latest),
        change_id=chosen.change_id,
        title=change.title if change else "",
        author=change.author if change else "",
        services=tuple(change.services or ()) if change else (),
        confidence=chosen.confidence,
        evidence=dict(chosen.evidence or {}),
    )


def suggestion_in_thread(channel: str, thread_ts: str, rank: int, *, database_url: str) -> SuggestionDetail | None:
    """Suggestion ``rank`` (1-based) of the thread's latest answer; None when the thread has no answer
    or the answer has fewer suggestions (``ranks`` then says how many through a rank-0 detail)."""
    incident_id = thread_incident(channel, thread_ts, database_url=database_url)
    if incident_id is None:
        return None
    with session_scope(database_url) as session:
        return _detail(session, incident_id, _latest(session, incident_id), rank)


def suggestion_about(channel: str, thread_ts: str, about: str, *, database_url: str) -> SuggestionDetail | None:
    """The suggestion of the thread's latest answer that ``about`` names ("the config change"): its words
    count twice in a change's title and once in its files or services; the best wins, the higher rank on a tie.
    None when the thread has no answer; a rank-0 detail when no suggestion shares a word."""
    incident_id = thread_incident(channel, thread_ts, database_url=database_url)
    if incident_id is None:
        return None
    words = set(_WORDS.findall(about.lower()[:500])) - _STOP
    with session_scope(database_url) as session:
        latest = _latest(session, incident_id)
        scores: dict[int, int] = {}
        for rank, row in latest.items():
            change = session.get(Change, row.change_id)
            if change is None:
                continue
            places = " ".join([*(file.path for file in change.files), *(change.services or ())]).lower()
            scores[rank] = 2 * len(words & set(_WORDS.findall(change.title.lower()))) + len(words & set(_WORDS.findall(places)))
        best = max(sorted(scores), key=lambda rank: scores[rank], default=0)
        return _detail(session, incident_id, latest, best if scores.get(best) else 0)
