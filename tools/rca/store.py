"""Keep an answer as an Incident with its Suggestions, so feedback can point at them."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from knowledge.changes import Change, ChangeRecord, of_repository
from knowledge.db import session_scope
from knowledge.incidents import Incident, Suggestion
from tools.rca.answers import RcaAnswer
from tools.reports.redaction import redact


def store_answer(answer: RcaAnswer, database_url: str, channel: str | None = None, thread_ts: str | None = None) -> str:
    """Write (or update) the incident and add one Suggestion row per suggestion.

    Fills each ``suggestion_id`` in place; returns the incident id (generated
    when the query had none). The title and text are stored redacted (:func:`stored_words`).
    """
    query = answer.incident
    incident_id = query.incident_id or f"inc-{uuid.uuid4().hex[:12]}"
    with session_scope(database_url) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            incident = Incident(id=incident_id, started_at=query.started_at)
            session.add(incident)
        incident.title = stored_words(query.title)
        incident.text = stored_words(query.text)
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


def stored_words(text: str) -> str:
    """An incident's words as the store keeps them: without the e-mails, phones, keys... a report loses.

    Every incident the bot answers (``/rca``, a mention, a webhook, an incident channel, ``culprit rca``)
    is stored here, and training reads stored incidents into a model file's past incidents: redacting
    at this one place keeps personal data out of both. The answer itself was ranked on the request's
    own words, which are never stored. Incident text is short (2,000 characters from Slack, 4,000
    from a webhook or a channel): redacting it takes milliseconds, on the investigation's thread.
    """
    return redact(text)


def store_has_changes(database_url: str) -> bool:
    """Whether anything was ingested at all, to tell an empty store from an empty window."""
    with session_scope(database_url) as session:
        return session.scalars(select(Change.id).limit(1)).first() is not None


_RECORDS: dict[tuple[str, str], tuple[tuple, ChangeRecord]] = {}
_RECORDS_LIMIT = 250_000
_READ_BATCH = 1000


def window_changes(database_url: str, start: datetime, end: datetime, repo: str | None = None) -> list[ChangeRecord]:
    """Changes landed in ``[start, end)``, newest first.

    Each is read whole once per process and remembered; later windows read only
    ids and the few columns that can change after a change is stored (its
    services, re-derived when the catalog changes, the partial flag of a
    webhook's change that a poll completes, and whether its names are known
    yet, which ``culprit ingest names`` changes once), and read again what
    changed. A monorepo's fortnight (50,000 changes and their files) takes
    seconds to read whole, its ids a fraction of that."""
    query = select(
        Change.id, Change.partial, Change.services, Change.dependant_services, Change.functions.is_(None)
    ).where(Change.landed_time >= start, Change.landed_time < end)
    query = of_repository(query, repo)
    with session_scope(database_url) as session:
        rows = session.execute(query.order_by(Change.landed_time.desc(), Change.id)).all()
        marks = {row[0]: (bool(row[1]), tuple(row[2] or ()), tuple(row[3] or ()), bool(row[4])) for row in rows}
        ids = [row[0] for row in rows]
        missing = [
            change_id for change_id in ids
            if (cached := _RECORDS.get((database_url, change_id))) is None or cached[0] != marks[change_id]
        ]  # fmt: skip
        if len(_RECORDS) + len(missing) > _RECORDS_LIMIT:
            _RECORDS.clear()
            missing = ids
        for begin in range(0, len(missing), _READ_BATCH):
            chunk = missing[begin : begin + _READ_BATCH]
            found = session.scalars(select(Change).where(Change.id.in_(chunk)).options(selectinload(Change.files)))
            _RECORDS.update(((database_url, row.id), (marks[row.id], row.record())) for row in found)
    return [_RECORDS[(database_url, change_id)][1] for change_id in ids]
