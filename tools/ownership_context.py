"""Who owns a touched path and how far its service sits from the impacted one.

Built from the ``OwnershipRule`` and ``Service`` tables when they hold data; an
empty context simply contributes nothing, and the component map learned from
history stands in for it.
"""

from __future__ import annotations

import fnmatch
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy.orm import Session

from knowledge.ownership import all_rules
from knowledge.services import all_services


@lru_cache(maxsize=4096)
def _pattern_matches(pattern: str, path: str) -> bool:
    """CODEOWNERS-style: ``/dir/`` anchors, ``dir/`` matches anywhere, ``*.c`` matches names."""
    anchored = pattern.startswith("/")
    core = pattern.strip("/")
    if not core or core == "*":
        return True
    if pattern.endswith("/") or "*" not in core and "." not in core.rsplit("/", 1)[-1]:
        prefixes = [core + "/"]
        return path.startswith(prefixes[0]) if anchored else (path.startswith(prefixes[0]) or f"/{core}/" in f"/{path}")
    if "/" not in core and not anchored:
        return fnmatch.fnmatch(path.rsplit("/", 1)[-1], core) or fnmatch.fnmatch(path, core)
    return fnmatch.fnmatch(path, core) or fnmatch.fnmatch(path, core + "/*")


@dataclass
class OwnershipContext:
    """Ownership rules (later rules win) and the service graph."""

    rules: list[tuple[str, list[str]]] = field(default_factory=list)
    service_globs: dict[str, list[str]] = field(default_factory=dict)
    service_owner: dict[str, str] = field(default_factory=dict)
    depends_on: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.rules and not self.service_globs

    def owners_for(self, path: str) -> list[str]:
        owners: list[str] = []
        for pattern, rule_owners in self.rules:
            if _pattern_matches(pattern, path):
                owners = rule_owners
        return owners

    def owners_of(self, paths: Sequence[str]) -> list[str]:
        found: dict[str, None] = {}
        for path in paths:
            for owner in self.owners_for(path):
                found[owner] = None
        return list(found)

    def services_of(self, paths: Sequence[str]) -> list[str]:
        return [
            name
            for name, globs in self.service_globs.items()
            if any(fnmatch.fnmatch(path, glob) or path.startswith(glob.rstrip("*")) and glob.endswith("*") for glob in globs for path in paths)
        ]

    def dependency_path(self, impacted: str, services: Sequence[str]) -> list[str]:
        """Shortest path along ``depends_on`` from the impacted service to any of ``services``."""
        targets = set(services)
        if not impacted or not targets:
            return []
        previous: dict[str, str | None] = {impacted: None}
        queue = deque([impacted])
        while queue:
            current = queue.popleft()
            if current in targets:
                path = [current]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])  # type: ignore[arg-type]
                return list(reversed(path))
            for neighbour in self.depends_on.get(current, []):
                if neighbour not in previous:
                    previous[neighbour] = current
                    queue.append(neighbour)
        return []


def load_ownership(session: Session) -> OwnershipContext:
    services = all_services(session)
    return OwnershipContext(
        rules=[(rule.pattern, list(rule.owners)) for rule in all_rules(session)],
        service_globs={service.name: list(service.path_globs) for service in services},
        service_owner={service.name: service.owner for service in services},
        depends_on={service.name: list(service.depends_on) for service in services},
    )
