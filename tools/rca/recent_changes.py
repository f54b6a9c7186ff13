"""What changed in a service lately: the first question in most incident channels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from knowledge.changes import changes_landed_between
from knowledge.db import session_scope


@dataclass(frozen=True)
class RecentChange:
    """One landed change, as a responder scans a list of them."""

    change_id: str
    title: str
    author: str
    landed_time: datetime
    services: tuple[str, ...]
    n_files: int
    added: int
    deleted: int


def recent_changes(
    service: str,
    *,
    until: datetime,
    hours: float = 48,
    limit: int = 20,
    database_url: str | None = None,
) -> list[RecentChange]:
    """Changes that landed in ``service`` (or its repository) in the ``hours`` before ``until``, newest first."""
    wanted = service.strip().lower()
    with session_scope(database_url) as session:
        landed = changes_landed_between(session, until - timedelta(hours=hours), until)
        matching = [
            change
            for change in landed
            if wanted in {name.lower() for name in change.services} or change.repo.lower() == wanted
        ]
        return [
            RecentChange(
                change_id=change.id,
                title=change.title,
                author=change.author,
                landed_time=change.landed_time,
                services=tuple(change.services),
                n_files=change.n_files,
                added=change.added,
                deleted=change.deleted,
            )
            for change in matching[:limit]
        ]
