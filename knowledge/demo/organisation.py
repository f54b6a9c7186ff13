"""A whole demo organisation from one seed: teams, services, ownership, changes and incidents.

Tests across the project use this as a fixture, so it is deterministic for a
seed, fast at small sizes, and keeps the ground truth (which change caused
which incident, and how hard that is to see) next to what a tool may read.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

from knowledge.demo.catalog import (
    OWNERSHIP_OVERRIDES,
    REPO,
    SERVICES,
    SERVICES_BY_NAME,
    SHARED_OWNERSHIP,
    TEAMS,
    ServiceSpec,
)
from knowledge.demo.changes import ChangeWriter, DemoChange, DemoPerson, build_people
from knowledge.demo.reports import DemoReports, demo_reports
from knowledge.demo.incidents import (
    WINDOW_DAYS,
    DemoIncident,
    can_be_culprit,
    draw_incident,
    first_candidate_time,
    fix_for,
    weighted_sample,
)

DEFAULT_END = datetime(2025, 3, 31, 18, 0, tzinfo=UTC)
# Bug reports cover the last three months: thousands of reports and four outages.
REPORT_DAYS = 90


@dataclass(frozen=True)
class DemoTeam:
    name: str
    handle: str
    members: list[DemoPerson]


@dataclass(frozen=True)
class DemoService:
    """A catalog component as ``catalog-info.yaml`` describes it."""

    name: str
    owner: str
    description: str
    globs: list[str]
    depends_on: list[str]
    language: str


@dataclass(frozen=True)
class OwnershipLine:
    """One CODEOWNERS rule; ``section`` becomes a comment above the first rule of its group."""

    section: str
    pattern: str
    owners: list[str]


@dataclass
class DemoOrganisation:
    """Everything generated for one seed, including the answer key."""

    seed: int
    repo: str
    start: datetime
    end: datetime
    teams: list[DemoTeam]
    services: list[DemoService]
    ownership: list[OwnershipLine]
    changes: list[DemoChange]
    incidents: list[DemoIncident]
    example: DemoIncident
    reports: DemoReports

    @cached_property
    def changes_by_id(self) -> dict[str, DemoChange]:
        return {change.id: change for change in self.changes}

    def service(self, name: str) -> DemoService:
        return next(service for service in self.services if service.name == name)

    def service_records(self) -> list[dict[str, object]]:
        """Services in the shape the wiki generator takes."""
        return [
            {"name": s.name, "owner": s.owner, "description": s.description, "depends_on": list(s.depends_on)}
            for s in self.services
        ]

    def postmortems(self, count: int = 8) -> list[dict[str, str]]:
        """A few past incidents written up, one per impacted service where possible."""
        chosen: list[DemoIncident] = []
        seen: set[str] = set()
        for incident in reversed(self.incidents):
            if incident.service not in seen and incident.difficulty != "hard":
                chosen.append(incident)
                seen.add(incident.service)
            if len(chosen) == count:
                break
        return [
            {
                "incident_id": incident.id,
                "title": incident.title,
                "service": incident.service,
                "started_at": incident.started_at.isoformat(),
                "symptom": incident.text,
                "root_cause_change_id": incident.culprits[0],
                "root_cause_title": self.changes_by_id[incident.culprits[0]].title,
            }
            for incident in chosen
        ]


def generate_organisation(
    seed: int = 7,
    *,
    n_changes: int = 3000,
    n_incidents: int = 300,
    days: int = 180,
    end: datetime = DEFAULT_END,
) -> DemoOrganisation:
    """Generate the organisation; the same arguments always give the same result."""
    if days <= WINDOW_DAYS + 2:
        raise ValueError(f"days must exceed the {WINDOW_DAYS}-day incident window")
    rng = random.Random(seed)
    start = end - timedelta(days=days)
    people = build_people(rng)
    writer = ChangeWriter(rng, people)
    changes = [writer.draw(landed) for landed in writer.landed_times(n_changes, start, days)]

    end_time = int(end.timestamp())
    example = _example_incident(rng, changes, end_time)
    earliest = first_candidate_time(start)
    eligible = [
        change
        for change in changes
        if can_be_culprit(change)
        and earliest <= change.landed_time <= end_time - 6 * 3600
        and change.id not in example.culprits
    ]
    incidents = [
        draw_incident(rng, culprit, latest=end_time - 3600)
        for culprit in weighted_sample(rng, eligible, n_incidents)
    ]
    incidents.sort(key=lambda incident: (incident.started_time, incident.culprits[0]))
    by_id = {change.id: change for change in changes}
    for number, incident in enumerate(incidents, start=1001):
        incident.id = f"INC-{number}"
        culprit = by_id[incident.culprits[0]]
        team = people[SERVICES_BY_NAME[culprit.service].team]
        changes.append(fix_for(rng, incident, culprit, team))
    example.id = f"INC-{1001 + len(incidents)}"

    changes.sort(key=lambda change: (change.landed_time, change.id))
    _attach_candidates(changes, [*incidents, example])
    return DemoOrganisation(
        seed=seed,
        repo=REPO,
        start=start,
        end=end,
        teams=[DemoTeam(team.name, team.handle, people[team.name]) for team in TEAMS],
        services=[_catalog_entry(spec) for spec in SERVICES],
        ownership=ownership_lines(),
        changes=changes,
        incidents=incidents,
        example=example,
        reports=demo_reports(days=min(days, REPORT_DAYS), end=end.date(), seed=seed),
    )


def _example_incident(rng: random.Random, changes: list[DemoChange], end_time: int) -> DemoIncident:
    """The incident ``culprit demo`` asks about: recent, with a hint a responder would give."""
    recent = [
        change
        for change in changes
        if can_be_culprit(change)
        and change.kind != "code"
        and change.service not in ("shared-libs", "billing-db")
        and end_time - 3 * 86400 <= change.landed_time <= end_time - 3600
    ]
    if not recent:
        recent = [change for change in changes if can_be_culprit(change)] or changes
    culprit = rng.choice(recent)
    return draw_incident(rng, culprit, latest=end_time, difficulty="lexical")


def _attach_candidates(changes: list[DemoChange], incidents: list[DemoIncident]) -> None:
    """Every change landed in [start - window, start), newest first, as the history format defines."""
    landed = [change.landed_time for change in changes]
    for incident in incidents:
        low = bisect.bisect_left(landed, incident.window_start)
        high = bisect.bisect_left(landed, incident.started_time)
        incident.candidates = [change.id for change in reversed(changes[low:high])]


def _catalog_entry(spec: ServiceSpec) -> DemoService:
    return DemoService(
        name=spec.name,
        owner=spec.team,
        description=spec.description,
        globs=list(spec.globs),
        depends_on=list(spec.depends_on),
        language=spec.language,
    )


def _codeowners_pattern(glob: str) -> str:
    """``services/payments/**`` is ``/services/payments/`` in CODEOWNERS; files stay anchored files."""
    return f"/{glob.removesuffix('**')}"


def _depth(pattern: str) -> int:
    return pattern.strip("/").count("/")


def ownership_lines() -> list[OwnershipLine]:
    """CODEOWNERS rules, general before specific, because the last matching rule wins."""
    lines = [OwnershipLine("Default owners", "*", ["@acme/platform-team"])]
    services: list[tuple[str, list[str]]] = [(pattern, list(owners)) for pattern, owners in SHARED_OWNERSHIP]
    overrides: list[tuple[str, list[str]]] = [(pattern, list(owners)) for pattern, owners in OWNERSHIP_OVERRIDES]
    for spec in SERVICES:
        handle = f"@acme/{spec.team}"
        services.extend((_codeowners_pattern(glob), [handle]) for glob in spec.globs)
        if spec.tables:
            overrides.append((f"/{spec.directory}/migrations/", [handle, "@acme/dba-team"]))
    services.sort(key=lambda rule: _depth(rule[0]))
    overrides.sort(key=lambda rule: _depth(rule[0]))
    lines += [OwnershipLine("Services and shared areas", p, o) for p, o in services]
    lines += [OwnershipLine("Nested owners (reviewed together)", p, o) for p, o in overrides]
    return lines
