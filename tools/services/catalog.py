"""The catalog's service names, for resolving what a responder typed."""

from __future__ import annotations

from sqlalchemy import select

from knowledge.db import session_scope
from knowledge.services import Service


def service_names(database_url: str) -> list[str]:
    with session_scope(database_url) as session:
        return list(session.scalars(select(Service.name).order_by(Service.name)))
