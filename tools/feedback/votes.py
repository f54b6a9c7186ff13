"""Responders' votes on suggestions, and what they teach culprit.

A thumbs-up is the strongest label culprit ever gets: the responder who fixed
the incident says which change caused it. It becomes a ``RootCause`` row with
``source="feedback"`` so it joins the training history next to past
investigations. Votes also give the one honest quality figure for the live bot:
the share of voted suggestions that responders confirmed, week by week.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from knowledge.db import session_scope, utcnow
from knowledge.errors import InputError
from knowledge.incidents import Feedback, RootCause, Suggestion

UP = 1
DOWN = -1


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


def record_vote(
    suggestion_id: int,
    user_id: str,
    vote: int,
    *,
    database_url: str,
    at: datetime | None = None,
) -> VoteTally:
    """Store one responder's vote (a second click by the same person replaces the first).

    A thumbs-up confirms the change as the incident's root cause; taking it back
    removes that confirmation unless someone else still vouches for it.
    """
    if vote not in (UP, DOWN):
        raise InputError(f"a vote is +1 or -1, not {vote!r}")
    at = at or utcnow()
    try:
        with session_scope(database_url) as session:
            return _store_vote(session, suggestion_id, user_id, vote, at)
    except IntegrityError:
        # Two clicks from the same person raced on the unique (suggestion, user) key:
        # the retry finds the first vote and updates it.
        with session_scope(database_url) as session:
            return _store_vote(session, suggestion_id, user_id, vote, at)


def _store_vote(
    session: Session, suggestion_id: int, user_id: str, vote: int, at: datetime
) -> VoteTally:
    suggestion = session.get(Suggestion, suggestion_id)
    if suggestion is None:
        raise InputError(f"no suggestion {suggestion_id}: it may have been deleted by retention")
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
