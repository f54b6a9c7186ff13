"""How recent culprit's knowledge of each source is: when it was last checked and its newest change.

A repository polled a minute ago with nothing new is fresh even if its newest
commit is a week old; one whose poll has failed since yesterday is stale even
if it was busy until then. So each source keeps the time it was last known
complete (``checked_at``), apart from the time of its newest change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from knowledge.changes import Change
from knowledge.db import Base, UTCDateTime, session_scope, utcnow

POLLED = "git"  # a tracked repository: its mirror is fetched every poll
BY_HAND = "git-by-hand"  # `culprit ingest git`: known up to the last time someone ran it
EVENTS = "events"  # change events pushed to POST /changes or `culprit ingest changes`
# The kinds someone keeps current, so an answer can judge them fresh or stale; event sources push what
# they have, and history files loaded once describe the past they cover.
KEPT_CURRENT = (POLLED, BY_HAND)


class SourceSync(Base):
    """The last time a source was known complete, its newest change, and the last error (masked)."""

    __tablename__ = "source_syncs"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    newest_change_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class SourceState:
    """One source as an answer and ``/metrics`` report it; ``checked_at`` None means never checked."""

    source: str
    kind: str
    checked_at: datetime | None
    newest_change_at: datetime | None
    error: str = ""


def record_check(
    session: Session, source: str, kind: str, *, at: datetime | None = None, error: str = ""
) -> None:
    """Mark ``source`` known complete at ``at`` (now), or, with ``error``, keep its last good time."""
    row = session.get(SourceSync, source) or SourceSync(source=source, kind=kind, error="")
    row.kind = kind
    if error:
        row.error = error[:500]
    else:
        row.checked_at = at or utcnow()
        row.error = ""
    newest = session.scalar(select(func.max(Change.landed_time)).where(Change.repo == source))
    row.newest_change_at = newest
    session.merge(row)


def note_ingested_by_hand(url: str, repo: str) -> None:
    """After ``culprit ingest git``: the repository is known up to now, unless a poller already keeps it."""
    with session_scope(url) as session:
        row = session.get(SourceSync, repo)
        if row is None or row.kind == BY_HAND:
            record_check(session, repo, BY_HAND)


def source_states(session: Session) -> list[SourceState]:
    """Every checked source, and every other repository in the store by its newest change."""
    synced = {row.source: row for row in session.scalars(select(SourceSync))}
    newest_by_repo = {
        repo: newest
        for repo, newest in session.execute(select(Change.repo, func.max(Change.landed_time)).group_by(Change.repo))
    }
    states = [
        SourceState(row.source, row.kind, row.checked_at, newest_by_repo.get(row.source), row.error)
        for row in synced.values()
    ]
    states += [
        SourceState(repo, "loaded", None, newest) for repo, newest in newest_by_repo.items() if repo not in synced
    ]
    return sorted(states, key=lambda state: state.source)
