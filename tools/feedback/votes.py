"""Responders' votes on suggestions, and what they teach culprit.

A thumbs-up is the strongest label culprit ever gets: the responder who fixed
the incident says which change caused it. It becomes a ``RootCause`` row with
``source="feedback"`` so it joins the training history next to past
investigations. Votes also give the one honest quality figure for the live bot:
the share of voted suggestions that responders confirmed, week by week.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from knowledge.db import session_scope, utcnow
from knowledge.errors import InputError
from knowledge.incidents import Feedback, Incident, RootCause, Suggestion

UP = 1
DOWN = -1
# suggestions.id is a 32-bit integer on PostgreSQL; a bigger "id" can only be a forged or garbled button value.
MAX_SUGGESTION_ID = 2**31 - 1
_SUGGESTION_ID = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True)
class MessagePlace:
    """Where a Slack message sits: its channel, its ts, and the thread it is a reply in, if any."""

    channel: str
    message_ts: str
    thread_ts: str | None = None


@dataclass(frozen=True)
class VoteTally:
    """Where the votes on one suggestion stand after a click."""

    suggestion_id: int
    incident_id: str
    change_id: str
    up: int
    down: int
    vote: int
    changed: bool


@dataclass(frozen=True)
class WeekPrecision:
    """Suggestions voted on in one ISO week and how many responders confirmed."""

    week: str
    voted: int
    confirmed: int
    rejected: int
    incidents: int
    incidents_solved: int

    @property
    def precision(self) -> float | None:
        return self.confirmed / self.voted if self.voted else None

    def to_dict(self) -> dict[str, object]:
        return {
            "week": self.week,
            "voted": self.voted,
            "confirmed": self.confirmed,
            "rejected": self.rejected,
            "precision": self.precision,
            "incidents": self.incidents,
            "incidents_solved": self.incidents_solved,
        }


def suggestion_id_from(value: object) -> int:
    """The suggestion id a feedback button carries, read strictly: it arrives from outside.

    Python's ``int`` would take ``"1_1"`` as 11 and ``" 7"`` as 7, and an id
    past the column's range would fail in the database instead of here.
    """
    text = str(value)
    if not _SUGGESTION_ID.fullmatch(text) or not 0 < int(text) <= MAX_SUGGESTION_ID:
        raise InputError(f"{text[:40]!r} is not a suggestion id")
    return int(text)


def place_answer(incident_id: str, channel: str, thread_ts: str | None, *, database_url: str) -> None:
    """Remember where an incident's answer was posted: only clicks there count as votes on its suggestions.

    ``thread_ts`` is the thread the answer lives in: the answer's own ts for a
    ``/rca`` answer, the mention's thread for an agent's answer; None when
    Slack did not say (an answer sent through a ``response_url``).
    """
    with session_scope(database_url) as session:
        session.execute(update(Incident).where(Incident.id == incident_id).values(channel=channel, thread_ts=thread_ts))


def record_vote(
    suggestion_id: int,
    user_id: str,
    vote: int,
    *,
    database_url: str,
    clicked_in: MessagePlace | None = None,
    at: datetime | None = None,
) -> VoteTally:
    """Store one responder's vote (a second click by the same person replaces the first).

    A thumbs-up confirms the change as the incident's root cause; taking it back
    removes that confirmation unless someone else still vouches for it. A click
    (``clicked_in``) counts only on the message that showed the suggestion
    (:func:`place_answer`); without it the caller vouches for the vote.
    """
    if vote not in (UP, DOWN):
        raise InputError(f"a vote is +1 or -1, not {vote!r}")
    at = at or utcnow()
    try:
        with session_scope(database_url) as session:
            return _store_vote(session, suggestion_id, user_id, vote, at, clicked_in)
    except IntegrityError:
        # Two clicks from the same person raced on the unique (suggestion, user) key:
        # the retry finds the first vote and updates it.
        with session_scope(database_url) as session:
            return _store_vote(session, suggestion_id, user_id, vote, at, clicked_in)


def _store_vote(
    session: Session, suggestion_id: int, user_id: str, vote: int, at: datetime, clicked_in: MessagePlace | None
) -> VoteTally:
    suggestion = session.get(Suggestion, suggestion_id)
    if suggestion is None:
        raise InputError(f"no suggestion {suggestion_id}: it may have been deleted by retention")
    if clicked_in is not None and not _posted_in(suggestion.incident, clicked_in):
        raise InputError(f"suggestion {suggestion_id} was not posted in this message; vote on the answer that shows it")
    existing = session.scalars(
        select(Feedback).where(Feedback.suggestion_id == suggestion_id, Feedback.user_id == user_id)
    ).one_or_none()
    changed = existing is None or existing.vote != vote
    if existing is None:
        session.add(Feedback(suggestion_id=suggestion_id, user_id=user_id, vote=vote, at=at))
    else:
        existing.vote = vote
        existing.at = at
    session.flush()
    up, down = _counts(session, suggestion_id)
    _sync_root_cause(session, suggestion, user_id, up, at)
    return VoteTally(
        suggestion_id=suggestion_id,
        incident_id=suggestion.incident_id,
        change_id=suggestion.change_id,
        up=up,
        down=down,
        vote=vote,
        changed=changed,
    )


def _posted_in(incident: Incident, place: MessagePlace) -> bool:
    if incident.channel != place.channel:
        return False
    return incident.thread_ts is None or incident.thread_ts in (place.message_ts, place.thread_ts)


def _counts(session: Session, suggestion_id: int) -> tuple[int, int]:
    rows = session.execute(
        select(Feedback.vote, func.count())
        .where(Feedback.suggestion_id == suggestion_id)
        .group_by(Feedback.vote)
    ).all()
    counts = {vote: count for vote, count in rows}
    return counts.get(UP, 0), counts.get(DOWN, 0)


def _sync_root_cause(
    session: Session, suggestion: Suggestion, user_id: str, up: int, at: datetime
) -> None:
    key = {"incident_id": suggestion.incident_id, "change_id": suggestion.change_id}
    root_cause = session.get(RootCause, key)
    if up > 0 and root_cause is None:
        session.add(RootCause(**key, source="feedback", confirmed_by=user_id, confirmed_at=at))
    elif up == 0 and root_cause is not None and root_cause.source == "feedback":
        session.delete(root_cause)


def precision_by_week(*, database_url: str) -> list[WeekPrecision]:
    """Per ISO week of the suggestion, the share of voted suggestions that responders confirmed.

    A suggestion counts as confirmed when it has more thumbs up than down. The
    incident columns say how often the bot's list held the culprit at all.
    """
    with session_scope(database_url) as session:
        rows = session.execute(
            select(Suggestion.id, Suggestion.incident_id, Suggestion.created_at, Feedback.vote).join(
                Feedback, Feedback.suggestion_id == Suggestion.id
            )
        ).all()
    net: dict[int, int] = {}
    placed: dict[int, tuple[str, str]] = {}
    for suggestion_id, incident_id, created_at, vote in rows:
        net[suggestion_id] = net.get(suggestion_id, 0) + vote
        year, week, _ = created_at.isocalendar()
        placed[suggestion_id] = (f"{year}-W{week:02d}", incident_id)
    weeks: dict[str, dict[str, set[object]]] = {}
    for suggestion_id, score in net.items():
        week, incident_id = placed[suggestion_id]
        bucket = weeks.setdefault(
            week, {"voted": set(), "confirmed": set(), "rejected": set(), "incidents": set(), "solved": set()}
        )
        bucket["voted"].add(suggestion_id)
        bucket["incidents"].add(incident_id)
        if score > 0:
            bucket["confirmed"].add(suggestion_id)
            bucket["solved"].add(incident_id)
        elif score < 0:
            bucket["rejected"].add(suggestion_id)
    return [
        WeekPrecision(
            week=week,
            voted=len(bucket["voted"]),
            confirmed=len(bucket["confirmed"]),
            rejected=len(bucket["rejected"]),
            incidents=len(bucket["incidents"]),
            incidents_solved=len(bucket["solved"]),
        )
        for week, bucket in sorted(weeks.items())
    ]
