"""Which services a change belongs to: the one attribution every reader of ``services`` relies on.

A change is attributed from its paths, by the first rule that places a path:

1. the catalog's path globs (the most specific glob wins, so
   ``deploy/payments/**`` beats a platform service's ``deploy/**``);
2. directory conventions: a path segment named like a catalog service
   (``services/payments/...``, ``payments/...``, ``cmd/payments/...``);
3. ownership: the CODEOWNERS/MAINTAINERS owners of the path, when exactly
   one catalog service has that owner (a team owning one service).

A change that touches a shared library (catalog ``spec.type: library``)
also belongs to the services that depend on that library; those are kept
apart as ``dependants`` so answers can mark them ("via shared-libs").
Ingestion stores the result with each change, and :func:`reattribute`
re-derives it for stored changes when the catalog or ownership rules change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from knowledge.changes import Change, ChangeRecord
from knowledge.db import session_scope
from knowledge.ownership import (
    CompiledPattern,
    OwnershipIndex,
    OwnershipRule,
    all_rules,
    compile_pattern,
    normalise_path,
)
from knowledge.services import Service, all_services

LIBRARY_KINDS = frozenset({"library", "lib", "shared-library"})
_MAX_PATHS = 200  # a mass rename or vendoring touches thousands of files; its first paths say where it lives
_CONVENTION_DEPTH = 3  # services/payments/..., apps/web/src/...: a service's name sits in the first few segments
_BATCH = 1000


@dataclass(frozen=True)
class Attribution:
    """The services a change touched, and those reached through a shared library it touched."""

    services: tuple[str, ...] = ()
    dependants: tuple[str, ...] = ()


def owner_name(owner: str) -> str:
    """``@acme/payments-team``, ``group:default/payments-team`` or ``payments-team`` -> ``payments-team``."""
    return owner.split(":", 1)[-1].rsplit("/", 1)[-1].lstrip("@").strip().lower()


class Attributor:
    """The catalog and ownership rules compiled once, answering for any number of changes."""

    def __init__(
        self, services: Sequence[Service], rules: Sequence[OwnershipRule] = (), index: OwnershipIndex | None = None
    ) -> None:
        """``index``: the rules already compiled (a kernel MAINTAINERS is ~25,000 patterns), else built here."""
        self._globs = [
            (service.name, compile_pattern(glob)) for service in services for glob in service.path_globs
        ]
        self._names = {service.name.lower(): service.name for service in services}
        by_owner: dict[str, list[str]] = {}
        for service in services:
            if service.owner:
                by_owner.setdefault(owner_name(service.owner), []).append(service.name)
        self._sole_service = {owner: names[0] for owner, names in by_owner.items() if len(names) == 1}
        self._index = (index or OwnershipIndex.from_rules(list(rules))) if rules and self._sole_service else None
        self.libraries = {service.name for service in services if is_library(service)}
        self._dependants: dict[str, tuple[str, ...]] = {
            library: tuple(sorted(s.name for s in services if library in s.depends_on)) for library in self.libraries
        }

    @classmethod
    def load(cls, session: Session) -> Attributor:
        return cls(all_services(session), all_rules(session))

    @property
    def empty(self) -> bool:
        """Without a catalog nothing can be attributed, and changes keep what they came with."""
        return not self._names

    def of_paths(self, paths: Iterable[str]) -> Attribution:
        found: dict[str, None] = {}
        for path in list(paths)[:_MAX_PATHS]:
            found.update(dict.fromkeys(self._services_of_path(normalise_path(path))))
        direct = tuple(found)
        reached: dict[str, None] = {}
        for library in (name for name in direct if name in self.libraries):
            reached.update(dict.fromkeys(self._dependants[library]))
        return Attribution(direct, tuple(name for name in reached if name not in found))

    def of_record(self, record: ChangeRecord) -> ChangeRecord:
        """The record with its services derived from its paths (kept as they came when nothing places it)."""
        if self.empty:
            return record
        attribution = self.of_paths(record.paths)
        if not attribution.services:
            return record
        services = attribution.services
        if record.kind != "commit":  # a change event names its service itself: keep it beside what its files say
            services = tuple(sorted(set(record.services) | set(services)))
        return replace(record, services=services, dependant_services=attribution.dependants)

    def _services_of_path(self, path: str) -> list[str]:
        by_glob = _most_specific(path, self._globs)
        if by_glob:
            return by_glob
        for segment in path.split("/")[:_CONVENTION_DEPTH]:
            if (name := self._names.get(segment.lower())) is not None:
                return [name]
        if self._index is not None:
            owned = {self._sole_service.get(owner_name(owner)) for owner in self._index.owners(path)}
            return sorted(name for name in owned if name)
        return []


def is_library(service: Service) -> bool:
    """A shared library by the catalog's ``spec.type``, else by the ``libs/`` directory convention."""
    if (service.kind or "").lower() in LIBRARY_KINDS:
        return True
    return bool(service.path_globs) and all(
        glob.lstrip("/").split("/", 1)[0] in {"lib", "libs", "shared"} for glob in service.path_globs
    )


def _most_specific(path: str, globs: list[tuple[str, CompiledPattern]]) -> list[str]:
    best: dict[str, int] = {}
    for name, compiled in globs:
        if compiled.matches(path):
            best[name] = max(best.get(name, -1), _specificity(compiled.pattern))
    if not best:
        return []
    top = max(best.values())
    return [name for name, score in best.items() if score == top]


@lru_cache(maxsize=4096)
def _specificity(pattern: str) -> int:
    """Literal segments before the first wildcard: ``deploy/payments/**`` (2) beats ``deploy/**`` (1)."""
    return len(compile_pattern(pattern).literal_prefix) * 2 + (0 if "*" in pattern else 1)


@dataclass(frozen=True)
class ServiceChanges:
    """How many changes landed in a service in a period: its own, and through shared libraries."""

    service: str
    own: int
    via_libraries: int


def changes_by_service(url: str, start: datetime, end: datetime) -> list[ServiceChanges]:
    """Changes landed in ``[start, end)`` counted per service as attributed, busiest first."""
    own: Counter[str] = Counter()
    via: Counter[str] = Counter()
    with session_scope(url) as session:
        rows = session.execute(
            select(Change.services, Change.dependant_services).where(Change.landed_time >= start, Change.landed_time < end)
        )
        for services, dependants in rows:
            own.update(set(services or ()))
            via.update(set(dependants or ()) - set(services or ()))
    names = sorted(set(own) | set(via), key=lambda name: (-own[name], -via[name], name))
    return [ServiceChanges(name, own[name], via[name]) for name in names]


def reattribute(url: str) -> tuple[int, int]:
    """Derive every stored change's services again from the current catalog and rules.

    Returns (changes looked at, changes whose services changed). Run after the
    catalog or ownership rules change (``culprit ingest reattribute``; catalog
    ingestion does it by itself).
    """
    with session_scope(url) as session:
        attributor = Attributor.load(session)
        ids = list(session.scalars(select(Change.id).order_by(Change.id)))
    if attributor.empty:
        return len(ids), 0
    updated = 0
    for start in range(0, len(ids), _BATCH):
        with session_scope(url) as session:
            rows = session.scalars(
                select(Change).where(Change.id.in_(ids[start : start + _BATCH])).options(selectinload(Change.files))
            )
            for change in rows:
                attribution = attributor.of_paths(file.path for file in change.files)
                services, dependants = list(attribution.services), list(attribution.dependants)
                if services and (services != list(change.services or []) or dependants != list(change.dependant_services or [])):
                    change.services, change.dependant_services = services, dependants
                    updated += 1
    return len(ids), updated
