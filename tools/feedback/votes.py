"""Responders' votes on suggestions: who clicked 👍 or 👎, and when.

A vote is an opinion, not a label: one person's 👍 never makes a change the
confirmed cause (that would let one careless or hostile click write the next
model's training data). After each vote the two-vote rule of
:mod:`tools.feedback.confirmations` decides whether the votes now agree enough
to confirm (only on an answer in an incident channel), or no longer do.
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
from tools.feedback.confirmations import LABEL_SOURCES, MessagePlace, apply_vote_rule, posted_in

UP = 1
DOWN = -1
# suggestions.id is a 32-bit integer on PostgreSQL; a bigger "id" can only be a forged or garbled button value.
MAX_SUGGESTION_ID = 2**31 - 1
_SUGGESTION_ID = re.compile(r"[0-9]{1,10}")


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
    confirmed: bool = False


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
    in_incident_channel: bool = False,
    at: datetime | None = None,
) -> VoteTally:
    """Store one responder's vote (a second click by the same person replaces the first).

    Two different people's 👍 with no 👎 confirm the change as the root cause
    when the answer is ``in_incident_channel`` (the caller asks Slack; by
    default votes stay votes); a 👎 or a withdrawn 👍 undoes a confirmation
    the votes made. A click (``clicked_in``) counts only on the message that
    showed the suggestion (:func:`place_answer`); without it the caller
    vouches for the vote.
    """
    if vote not in (UP, DOWN):
        raise InputError(f"a vote is +1 or -1, not {vote!r}")
    at = at or utcnow()
    try:
        with session_scope(database_url) as session:
            return _store_vote(session, suggestion_id, user_id, vote, at, clicked_in, in_incident_channel)
    except IntegrityError:
        # Two clicks from the same person raced on the unique (suggestion, user) key:
        # the retry finds the first vote and updates it.
        with session_scope(database_url) as session:
            return _store_vote(session, suggestion_id, user_id, vote, at, clicked_in, in_incident_channel)


def _store_vote(
    session: Session,
    suggestion_id: int,
    user_id: str,
    vote: int,
    at: datetime,
    clicked_in: MessagePlace | None,
    in_incident_channel: bool,
) -> VoteTally:
    suggestion = session.get(Suggestion, suggestion_id)
    if suggestion is None:
        raise InputError(f"no suggestion {suggestion_id}: it may have been deleted by retention")
    if clicked_in is not None and not posted_in(suggestion.incident, clicked_in):
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
    cause = apply_vote_rule(session, suggestion, at, in_incident_channel=in_incident_channel)
    confirmed = cause.confirmed if cause is not None else _is_confirmed(session, suggestion)
    return VoteTally(
        suggestion_id=suggestion_id,
        incident_id=suggestion.incident_id,
        change_id=suggestion.change_id,
        up=up,
        down=down,
        vote=vote,
        changed=changed,
        confirmed=confirmed,
    )


def _is_confirmed(session: Session, suggestion: Suggestion) -> bool:
    cause = session.get(RootCause, (suggestion.incident_id, suggestion.change_id))
    return cause is not None and cause.source in LABEL_SOURCES


def _counts(session: Session, suggestion_id: int) -> tuple[int, int]:
    rows = session.execute(
        select(Feedback.vote, func.count())
        .where(Feedback.suggestion_id == suggestion_id)
        .group_by(Feedback.vote)
    ).all()
    counts = {vote: count for vote, count in rows}
    return counts.get(UP, 0), counts.get(DOWN, 0)
