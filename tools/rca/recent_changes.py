"""What changed in a service lately: the first question in most incident channels."""

from __future__ import annotations

from datetime import datetime, timedelta

from knowledge.changes import ChangeRecord, changes_landed_between
from knowledge.db import session_scope


def recent_changes(
    service: str,
    *,
    until: datetime,
    hours: float = 48,
    limit: int = 20,
    database_url: str,
) -> list[ChangeRecord]:
    """Changes that landed in ``service`` (or its repository) in the ``hours`` before ``until``, newest first.

    A change to a shared library the service depends on counts too (its
    ``dependant_services`` name the service); :func:`via_library` tells them apart.
    """
    wanted = service.strip().lower()
    with session_scope(database_url) as session:
        landed = changes_landed_between(session, until - timedelta(hours=hours), until)
        matching = [
            change
            for change in landed
            if wanted in {name.lower() for name in (*change.services, *(change.dependant_services or ()))}
            or change.repo.lower() == wanted
        ]
        return [change.record() for change in matching[:limit]]


def via_library(change: ChangeRecord, service: str) -> bool:
    """Whether ``change`` belongs to ``service`` only through a shared library it depends on."""
    wanted = service.strip().lower()
    return wanted in {name.lower() for name in change.dependant_services} and wanted not in {
        name.lower() for name in change.services
    }
