"""Keep an answer as an Incident with its Suggestions, so feedback can point at them."""

from __future__ import annotations

import uuid
from dataclasses import asdict

from sqlalchemy import select

from knowledge.changes import Change
from knowledge.db import session_scope
from knowledge.incidents import Incident, Suggestion
from tools.rca.answers import RcaAnswer


def store_answer(answer: RcaAnswer, database_url: str, channel: str | None = None, thread_ts: str | None = None) -> str:
    """Write (or update) the incident and add one Suggestion row per suggestion.

    Fills each ``suggestion_id`` in place; returns the incident id (generated
    when the query had none).
    """
    query = answer.incident
    incident_id = query.incident_id or f"inc-{uuid.uuid4().hex[:12]}"
    with session_scope(database_url) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            incident = Incident(id=incident_id, started_at=query.started_at)
            session.add(incident)
        incident.title = query.title
        incident.text = query.text
        incident.service = query.service
        incident.repo = query.repo
        incident.started_at = query.started_at
        incident.channel = channel or incident.channel
        incident.thread_ts = thread_ts or incident.thread_ts
        rows = [
            Suggestion(
                incident=incident,
                change_id=suggestion.change_id,
                rank=suggestion.rank,
                score=suggestion.score,
                confidence=suggestion.confidence,
                judge=suggestion.judge,
                evidence=asdict(suggestion.evidence),
            )
            for suggestion in answer.suggestions
        ]
        session.add_all(rows)
        session.flush()
        for suggestion, row in zip(answer.suggestions, rows, strict=True):
            suggestion.suggestion_id = row.id
    return incident_id


def store_has_changes(database_url: str) -> bool:
    """Whether anything was ingested at all, to tell an empty store from an empty window."""
    with session_scope(database_url) as session:
        return session.scalars(select(Change.id).limit(1)).first() is not None
