"""What changed in a service lately: the first question in most incident channels."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from knowledge.changes import Change, ChangeRecord
from knowledge.db import session_scope

_READ_BATCH = 1000


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
    Only the few columns that place a change are read, newest first, until
    ``limit`` changes match: a window may be a year of a monorepo (a million
    changes), of which the answer shows 20.
    """
    wanted = service.strip().lower()
    found: list[str] = []
    with session_scope(database_url) as session:
        placed = session.execute(
            select(Change.id, Change.repo, Change.services, Change.dependant_services)
            .where(Change.landed_time >= until - timedelta(hours=hours), Change.landed_time < until)
            .order_by(Change.landed_time.desc(), Change.id)
            .execution_options(yield_per=_READ_BATCH)
        )
        for change_id, repo, services, dependants in placed:
            if len(found) == limit:
                break
            if wanted in {name.lower() for name in (*(services or ()), *(dependants or ()))} or repo.lower() == wanted:
                found.append(change_id)
        placed.close()
        loaded = session.scalars(select(Change).where(Change.id.in_(found)).options(selectinload(Change.files)))
        by_id = {change.id: change.record() for change in loaded}
    return [by_id[change_id] for change_id in found]


def via_library(change: ChangeRecord, service: str) -> bool:
    """Whether ``change`` belongs to ``service`` only through a shared library it depends on."""
    wanted = service.strip().lower()
    return wanted in {name.lower() for name in change.dependant_services} and wanted not in {
        name.lower() for name in change.services
    }
