"""Who owns a touched path and how far its service sits from the impacted one.

Built from the ``OwnershipRule`` and ``Service`` tables (matched with the
knowledge layer's CODEOWNERS/MAINTAINERS semantics) when they hold data; an
empty context contributes nothing, and the component map learned from
history stands in for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from knowledge.ownership import OwnershipIndex, OwnershipRule, all_rules
from knowledge.attribution import Attributor
from knowledge.services import Service, all_services, dependency_path


@dataclass
class OwnershipContext:
    """Ownership rules compiled once, and the service catalog with its dependency graph."""

    rules: list[OwnershipRule] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._index = OwnershipIndex.from_rules(self.rules) if self.rules else None
        self._attributor = Attributor(self.services, self.rules, self._index)
        self.service_owner = {service.name: service.owner for service in self.services}

    @property
    def empty(self) -> bool:
        return not self.rules and not self.services

    def owners_of(self, paths: Sequence[str]) -> list[str]:
        if self._index is None:
            return []
        found: dict[str, None] = {}
        for path in paths:
            found.update(dict.fromkeys(self._index.owners(path)))
        return list(found)

    def services_of(self, paths: Sequence[str]) -> list[str]:
        """The services a change's paths belong to, by the same attribution ingestion stores."""
        return list(self._attributor.of_paths(paths).services)

    def dependency_path(self, impacted: str, services: Sequence[str]) -> list[str]:
        """The shortest chain of services from the impacted one to any of ``services``."""
        if not impacted or impacted not in self.service_owner:
            return []
        routes = [route for name in services if (route := dependency_path(self.services, impacted, name))]
        return min(routes, key=len, default=[])


def load_ownership(session: Session) -> OwnershipContext:
    return OwnershipContext(rules=all_rules(session), services=all_services(session))
