"""Services from a catalog, their owning team, path globs and dependencies."""

from __future__ import annotations

from collections import deque

from sqlalchemy import JSON, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from knowledge.db import Base
from knowledge.ownership import compile_pattern, normalise_path


class Service(Base):
    """A catalog component; ``depends_on`` lists service names it calls, ``kind`` is its
    catalog ``spec.type`` (``service``, ``library``, ...)."""

    __tablename__ = "services"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    path_globs: Mapped[list[str]] = mapped_column(JSON, default=list)
    depends_on: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(500), default="")
    kind: Mapped[str] = mapped_column(String(50), default="", server_default="")


def all_services(session: Session) -> list[Service]:
    return list(session.scalars(select(Service).order_by(Service.name)))


def services_for_path(path: str, services: list[Service]) -> list[str]:
    """Services whose path globs (gitignore/CODEOWNERS syntax) cover ``path``."""
    path = normalise_path(path)
    return [
        service.name
        for service in services
        if any(compile_pattern(glob).matches(path) for glob in service.path_globs)
    ]


def _neighbours(services: list[Service]) -> dict[str, set[str]]:
    """The dependency graph without direction: an outage travels both ways along a call."""
    graph: dict[str, set[str]] = {service.name: set() for service in services}
    for service in services:
        for dependency in service.depends_on:
            graph[service.name].add(dependency)
            graph.setdefault(dependency, set()).add(service.name)
    return graph


def _breadth_first(graph: dict[str, set[str]], start: str) -> dict[str, str | None]:
    """Each reachable service mapped to the one it was reached from, nearest first."""
    came_from: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for neighbour in sorted(graph.get(current, ())):
            if neighbour not in came_from:
                came_from[neighbour] = current
                queue.append(neighbour)
    return came_from


def dependency_path(services: list[Service], from_service: str, to_service: str) -> list[str] | None:
    """The shortest chain of services linking two services, or None when unconnected."""
    came_from = _breadth_first(_neighbours(services), from_service)
    if to_service not in came_from:
        return None
    path: list[str] = []
    current: str | None = to_service
    while current is not None:
        path.append(current)
        current = came_from[current]
    return path[::-1]
