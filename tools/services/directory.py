"""Owners, on-call and dependencies of a service or a path, as responders ask for them."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

from knowledge.attribution import Attributor, is_library
from knowledge.db import session_scope
from knowledge.ownership import OwnershipIndex, all_rules, compile_pattern
from knowledge.services import Service, all_services

_PATH_HINTS = ("/", ".py", ".go", ".ts", ".yaml", ".yml", ".json", ".sql", ".md")


@dataclass(frozen=True)
class OwnersAnswer:
    """Who to talk to about a service or path: the catalog's owner team and the code owners."""

    target: str
    kind: str  # "service", "path" or "unknown"
    services: tuple[str, ...] = ()
    team: str = ""
    code_owners: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()

    @property
    def on_call(self) -> str:
        """The rotation to page: the owning team's (culprit holds no schedule of its own)."""
        return f"{self.team} on-call" if self.team else ""


@dataclass(frozen=True)
class DependencyAnswer:
    """A service's direct dependencies and dependants, and whether it is a shared library."""

    service: str
    found: bool
    depends_on: tuple[str, ...] = ()
    dependants: tuple[str, ...] = ()
    library: bool = False
    suggestions: tuple[str, ...] = field(default=())


def looks_like_path(target: str) -> bool:
    return any(hint in target for hint in _PATH_HINTS)


def resolve_service(name: str, names: Sequence[str]) -> str | None:
    """A catalog name from what a responder typed: exact, case-insensitive, or the closest spelling."""
    wanted = name.strip().strip("`*_'\"?.,").lower()
    by_lower = {candidate.lower(): candidate for candidate in names}
    if wanted in by_lower:
        return by_lower[wanted]
    close = difflib.get_close_matches(wanted, list(by_lower), n=1, cutoff=0.75)
    return by_lower[close[0]] if close else None


def close_services(name: str, names: Sequence[str]) -> tuple[str, ...]:
    """The catalog names nearest to ``name`` (or the first few), to suggest for a name the catalog lacks."""
    return tuple(difflib.get_close_matches(name.lower(), list(names), n=3, cutoff=0.5)) or tuple(sorted(names)[:8])


def _sample_paths(service: Service) -> list[str]:
    """A path under each of the service's globs, to ask the ownership rules about."""
    paths = []
    for glob in service.path_globs:
        if not any(char in glob for char in "*?[") and not glob.endswith("/"):
            paths.append(glob.lstrip("/"))  # one file, e.g. config/flags/payments.yaml
        elif prefix := "/".join(compile_pattern(glob).literal_prefix):
            paths.append(f"{prefix}/_")
    return paths


def owners_of(target: str, *, database_url: str) -> OwnersAnswer:
    """The owners of a catalog service (by name, typos forgiven) or of a repository path."""
    target = target.strip().strip("`")
    with session_scope(database_url) as session:
        services = all_services(session)
        rules = all_rules(session)
    index = OwnershipIndex.from_rules(rules) if rules else None
    by_name = {service.name: service for service in services}
    if looks_like_path(target):
        placed = Attributor(services, rules).of_paths([target]).services
        team = by_name[placed[0]].owner if placed else ""
        owners = tuple(index.owners(target)) if index else ()
        return OwnersAnswer(target, "path", tuple(placed), team, owners)
    name = resolve_service(target, list(by_name))
    if name is None:
        return OwnersAnswer(target, "unknown", suggestions=close_services(target, list(by_name)))
    service = by_name[name]
    owners: dict[str, None] = {}
    if index is not None:
        for path in _sample_paths(service):
            owners.update(dict.fromkeys(index.owners(path)))
    return OwnersAnswer(target, "service", (name,), service.owner, tuple(owners))


def dependencies_of(name: str, *, database_url: str) -> DependencyAnswer:
    """What a service calls and what calls it, from the catalog's ``dependsOn``."""
    with session_scope(database_url) as session:
        services = all_services(session)
    by_name = {service.name: service for service in services}
    resolved = resolve_service(name, list(by_name))
    if resolved is None:
        return DependencyAnswer(name, False, suggestions=close_services(name, list(by_name)))
    service = by_name[resolved]
    dependants = tuple(sorted(other.name for other in services if resolved in other.depends_on))
    return DependencyAnswer(resolved, True, tuple(service.depends_on), dependants, is_library(service))
