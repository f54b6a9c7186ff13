"""Confirmed root causes: who may confirm one, the two-vote rule, the audit trail and undo.

A confirmed cause is a training label, so one click must never make one. It
takes either a person with the authority to decide (a configured confirmer or
the incident channel's creator, checked by the caller who can ask Slack) or two
different responders' 👍 with no 👎 against, on an answer in an incident
channel (the caller says so: anyone can make another channel and vote there
with a friend). Every confirmation and retraction is a ``CauseEvent``; undoing
one writes its opposite, so the trail only grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge.changes import Change
from knowledge.confirmations import CONFIRM, RETRACT, CauseEvent
from knowledge.db import session_scope, utcnow
from knowledge.errors import InputError
from knowledge.incidents import Feedback, Incident, RootCause, Suggestion

# RootCause.source values written here.
CONFIRMED = "confirmed"  # by a person with authority
VOTED = "votes"  # by two distinct 👍 and no 👎
# Sources that are training labels: past investigations, postmortems, and the two above.
LABEL_SOURCES = ("history", "postmortem", CONFIRMED, VOTED)

CONFIRMER = "confirmer"
CHANNEL_CREATOR = "channel_creator"
OPERATOR = "operator"  # someone with the store's CLI
TWO_VOTES = "two_votes"
VOTES_CHANGED = "votes_changed"
UNDO = "undo"
VOTES_NEEDED = 2


@dataclass(frozen=True)
class MessagePlace:
    """Where a Slack message sits: its channel, its ts, and the thread it is a reply in, if any."""

    channel: str
    message_ts: str
    thread_ts: str | None = None


@dataclass(frozen=True)
class CauseChange:
    """What a confirmation or retraction did: ``event_id`` is None when nothing changed."""

    incident_id: str
    change_id: str
    confirmed: bool
    event_id: int | None


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit trail, as ``culprit feedback audit`` prints it."""

    id: int
    at: datetime
    incident_id: str
    change_id: str
    action: str
    actor: str
    authority: str
    undoes: int | None

    def to_dict(self) -> dict[str, object]:
        return {**self.__dict__, "at": self.at.isoformat()}


def decide_suggestion(
    suggestion_id: int,
    user_id: str,
    authority: str,
    *,
    confirm: bool,
    database_url: str,
    clicked_in: MessagePlace | None = None,
    at: datetime | None = None,
) -> CauseChange:
    """Confirm the suggestion's change as its incident's cause (``confirm``), or withdraw that,
    whoever made it, on ``authority`` the caller checked."""
    with session_scope(database_url) as session:
        suggestion = _suggestion(session, suggestion_id, clicked_in)
        step = _confirm if confirm else _retract
        return step(session, suggestion.incident_id, suggestion.change_id, user_id, authority, suggestion_id, at)


def confirm_suggestion(suggestion_id: int, user_id: str, authority: str, *, database_url: str) -> CauseChange:
    """:func:`decide_suggestion` confirming, for callers outside Slack (the CLI, tests)."""
    return decide_suggestion(suggestion_id, user_id, authority, confirm=True, database_url=database_url)


def confirm_cause(incident_id: str, change_id: str, user_id: str, authority: str, *, database_url: str) -> CauseChange:
    """Confirm a change culprit never suggested (a postmortem's finding, entered by an operator)."""
    with session_scope(database_url) as session:
        if session.get(Incident, incident_id) is None:
            raise InputError(f"no incident {incident_id!r}")
        if session.get(Change, change_id) is None:
            raise InputError(f"no change {change_id!r} in the store")
        return _confirm(session, incident_id, change_id, user_id, authority, None, None)


def undo_event(event_id: int, user_id: str, *, database_url: str, at: datetime | None = None) -> CauseChange:
    """Reverse one audited confirmation (by retracting) or retraction (by confirming again).

    Only the latest entry for its incident and change can be undone: a later
    one decided again (say a person confirmed the cause anew after it was
    withdrawn), and undoing the old entry would withdraw that new decision,
    which it does not undo.
    """
    with session_scope(database_url) as session:
        event = session.get(CauseEvent, event_id)
        if event is None:
            raise InputError(f"no audit entry {event_id}; see `culprit feedback audit`")
        latest = _latest_event(session, event.incident_id, event.change_id)
        if latest is not None and latest.id != event.id:
            raise InputError(
                f"audit entry {event.id} was superseded by entry {latest.id} ({latest.action} by {latest.actor}); "
                f"undo that one instead"
            )
        if event.action == CONFIRM:
            return _retract(session, event.incident_id, event.change_id, user_id, UNDO, event.suggestion_id, at, event.id)
        return _confirm(session, event.incident_id, event.change_id, user_id, UNDO, event.suggestion_id, at, event.id)


def apply_vote_rule(
    session: Session, suggestion: Suggestion, at: datetime, *, in_incident_channel: bool
) -> CauseChange | None:
    """After a vote: two distinct 👍 and no 👎 confirm; a cause confirmed so loses it when that stops holding.

    Votes confirm only on an answer ``in_incident_channel``: elsewhere whoever
    made the channel could ``/rca`` and vote with a friend, so there votes stay
    votes (they still withdraw what votes confirmed, which only takes a label
    away). A person's decision outranks votes both ways: votes never undo a
    cause a person confirmed, nor confirm again one a person withdrew.

    The votes counted are those on every suggestion of this change for this
    incident: a rerun answers the same incident again and shows the change
    anew, and one 👍 there must not withdraw what two 👍 on the first answer
    confirmed (nor a 👎 on the first answer be passed over by 👍 on the rerun).
    """
    votes = session.scalars(
        select(Feedback).join(Suggestion, Feedback.suggestion_id == Suggestion.id)
        .where(Suggestion.incident_id == suggestion.incident_id, Suggestion.change_id == suggestion.change_id)
    ).all()
    up = sorted({vote.user_id for vote in votes if vote.vote > 0})
    down = [vote for vote in votes if vote.vote < 0]
    holds = len(up) >= VOTES_NEEDED and not down
    current = session.get(RootCause, (suggestion.incident_id, suggestion.change_id))
    if holds and in_incident_channel and (current is None or current.source not in LABEL_SOURCES) and not _withdrawn_by_a_person(
        session, suggestion.incident_id, suggestion.change_id
    ):
        return _confirm(session, suggestion.incident_id, suggestion.change_id, ",".join(up), TWO_VOTES, suggestion.id, at)
    if not holds and current is not None and current.source == VOTED:
        return _retract(session, suggestion.incident_id, suggestion.change_id, "votes", VOTES_CHANGED, suggestion.id, at)
    return None


def _withdrawn_by_a_person(session: Session, incident_id: str, change_id: str) -> bool:
    last = _latest_event(session, incident_id, change_id)
    return last is not None and last.action == RETRACT and last.authority != VOTES_CHANGED


def _latest_event(session: Session, incident_id: str, change_id: str) -> CauseEvent | None:
    """The newest confirmation or retraction of this change as this incident's cause: what stands now."""
    return session.scalars(
        select(CauseEvent)
        .where(CauseEvent.incident_id == incident_id, CauseEvent.change_id == change_id)
        .order_by(CauseEvent.id.desc())
        .limit(1)
    ).first()


def audit_trail(*, database_url: str, incident_id: str | None = None, limit: int = 200) -> list[AuditEntry]:
    """The newest confirmations and retractions first."""
    query = select(CauseEvent).order_by(CauseEvent.id.desc()).limit(limit)
    if incident_id is not None:
        query = query.where(CauseEvent.incident_id == incident_id)
    with session_scope(database_url) as session:
        return [
            AuditEntry(e.id, e.at, e.incident_id, e.change_id, e.action, e.actor, e.authority, e.undoes)
            for e in session.scalars(query)
        ]


def posted_in(incident: Incident, place: MessagePlace) -> bool:
    """Whether a click in ``place`` is on the message that showed the incident's answer."""
    if incident.channel != place.channel:
        return False
    return incident.thread_ts is None or incident.thread_ts in (place.message_ts, place.thread_ts)


def _suggestion(session: Session, suggestion_id: int, clicked_in: MessagePlace | None) -> Suggestion:
    suggestion = session.get(Suggestion, suggestion_id)
    if suggestion is None:
        raise InputError(f"no suggestion {suggestion_id}: it may have been deleted by retention")
    if clicked_in is not None and not posted_in(suggestion.incident, clicked_in):
        raise InputError(f"suggestion {suggestion_id} was not posted in this message; confirm on the answer that shows it")
    return suggestion


def _confirm(
    session: Session,
    incident_id: str,
    change_id: str,
    actor: str,
    authority: str,
    suggestion_id: int | None,
    at: datetime | None,
    undoes: int | None = None,
) -> CauseChange:
    at = at or utcnow()
    source = VOTED if authority == TWO_VOTES else CONFIRMED
    current = session.get(RootCause, (incident_id, change_id))
    if current is not None and current.source in (CONFIRMED, "history", "postmortem"):
        return CauseChange(incident_id, change_id, True, None)
    if current is None:
        session.add(RootCause(incident_id=incident_id, change_id=change_id, source=source, confirmed_by=actor[:100], confirmed_at=at))
    else:  # a single vote's or the votes' confirmation, now made by a person with authority
        current.source, current.confirmed_by, current.confirmed_at = source, actor[:100], at
    return CauseChange(incident_id, change_id, True, _audit(session, incident_id, change_id, CONFIRM, actor, authority, suggestion_id, at, undoes))


def _retract(
    session: Session,
    incident_id: str,
    change_id: str,
    actor: str,
    authority: str,
    suggestion_id: int | None,
    at: datetime | None,
    undoes: int | None = None,
) -> CauseChange:
    at = at or utcnow()
    current = session.get(RootCause, (incident_id, change_id))
    if current is None:
        return CauseChange(incident_id, change_id, False, None)
    session.delete(current)
    return CauseChange(incident_id, change_id, False, _audit(session, incident_id, change_id, RETRACT, actor, authority, suggestion_id, at, undoes))


def _audit(
    session: Session,
    incident_id: str,
    change_id: str,
    action: str,
    actor: str,
    authority: str,
    suggestion_id: int | None,
    at: datetime,
    undoes: int | None,
) -> int:
    event = CauseEvent(
        incident_id=incident_id,
        change_id=change_id,
        action=action,
        actor=actor[:200],
        authority=authority,
        suggestion_id=suggestion_id,
        undoes=undoes,
        at=at,
    )
    session.add(event)
    session.flush()
    return event.id
