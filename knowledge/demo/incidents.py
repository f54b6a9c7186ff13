"""Past incidents with known root causes, written as a responder writes them at the start.

A responder sees a symptom on the service in front of them, not the change:
the title is an observation on the impacted service, and only some incidents
carry a hint that overlaps the culprit's words. The mix is the point: about
four in ten give a lexical hint, most of the rest only the service and the
timing, and about one in seven surface on a service that merely depends on
the one that changed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from knowledge.demo.catalog import (
    HARD_HINTS,
    KIND_HINTS,
    REGIONS,
    REPO,
    SERVICES,
    SERVICES_BY_NAME,
    SYMPTOM_DETAILS,
)
from knowledge.demo.changes import DemoChange, DemoPerson, new_sha

WINDOW_DAYS = 14
# How likely each kind of change is to be the one that broke production.
CULPRIT_WEIGHTS = {"config": 4.0, "flag": 4.0, "migration": 4.0, "dependency": 3.0, "refactor": 3.0, "code": 1.0}
DIFFICULTY_SHARES = {"lexical": 0.38, "service": 0.44, "hard": 0.18}


@dataclass
class DemoIncident:
    """One investigation: what the responder wrote, and the answer key."""

    id: str
    title: str
    text: str
    service: str
    started_time: int
    culprits: list[str]
    culprit_landed_times: list[int]
    culprit_service: str
    difficulty: str
    link_kind: str = "postmortem"
    fix_id: str | None = None
    candidates: list[str] = field(default_factory=list)

    @property
    def started_at(self) -> datetime:
        return datetime.fromtimestamp(self.started_time, UTC)

    @property
    def window_start(self) -> int:
        return self.started_time - WINDOW_DAYS * 86400

    def case_record(self) -> dict[str, object]:
        """The line of a ``cases-*.jsonl`` file; ``service`` is the impacted service a responder names."""
        ranks = [self.candidates.index(culprit) + 1 for culprit in self.culprits]
        return {
            "case_id": self.id,
            "repo": REPO,
            "incident": {
                "time": self.started_time,
                "time_iso": self.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "title": self.title,
                "text": self.text,
                "service": self.service,
            },
            "window_days": WINDOW_DAYS,
            "window_start": self.window_start,
            "n_candidates": len(self.candidates),
            "candidates": self.candidates,
            "truth": {
                "culprits": self.culprits,
                "link_kind": self.link_kind,
                "link_kinds": [self.link_kind],
                "culprit_landed_times": self.culprit_landed_times,
                "culprit_recency_ranks": ranks,
            },
            "provenance": {
                "incident_id": self.id,
                "fix_sha": self.fix_id,
                "difficulty": self.difficulty,
                "culprit_service": self.culprit_service,
            },
            "leak": None,
        }


def dependents_of(service: str) -> list[str]:
    """Services that call ``service`` directly and have symptoms a responder would see."""
    return [other.name for other in SERVICES if service in other.depends_on and other.symptoms]


def weighted_sample(rng: random.Random, changes: list[DemoChange], count: int) -> list[DemoChange]:
    """Distinct culprits, risky kinds first (Efraimidis-Spirakis keys)."""
    keyed = [(rng.random() ** (1.0 / CULPRIT_WEIGHTS[change.kind]), change) for change in changes]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [change for _key, change in keyed[:count]]


def can_be_culprit(change: DemoChange) -> bool:
    return change.kind in CULPRIT_WEIGHTS and change.service != "platform-config"


def draw_incident(
    rng: random.Random, culprit: DemoChange, latest: int, difficulty: str | None = None
) -> DemoIncident:
    """An incident caused by ``culprit``, starting minutes to days after it landed."""
    service = SERVICES_BY_NAME[culprit.service]
    dependents = dependents_of(culprit.service)
    if difficulty is None:
        difficulty = rng.choices(list(DIFFICULTY_SHARES), weights=list(DIFFICULTY_SHARES.values()))[0]
    if difficulty == "hard" and not dependents:
        difficulty = "service"
    if not service.symptoms:
        impacted = rng.choice(dependents)
        if difficulty == "service":
            difficulty = "lexical"
    elif difficulty == "hard":
        impacted = rng.choice(dependents)
    else:
        impacted = service.name
    delay = min(6 * 86400, max(600, int(rng.lognormvariate(math.log(8 * 3600), 1.2))))
    started = min(culprit.landed_time + delay, latest)
    title, text = _describe(rng, culprit, impacted, difficulty, started)
    return DemoIncident(
        id="",
        title=title,
        text=text,
        service=impacted,
        started_time=started,
        culprits=[culprit.id],
        culprit_landed_times=[culprit.landed_time],
        culprit_service=culprit.service,
        difficulty=difficulty,
    )


def _describe(
    rng: random.Random, culprit: DemoChange, impacted: str, difficulty: str, started: int
) -> tuple[str, str]:
    moment = datetime.fromtimestamp(started, UTC)
    values = {
        "since": moment.strftime("%H:%M"),
        "pct": rng.choice((3, 5, 8, 12, 15, 20, 30, 40)),
        "region": rng.choice(REGIONS),
        "secs": round(rng.uniform(2.5, 9.0), 1),
        "x": rng.randint(2, 5),
        "n": rng.randint(12, 180),
    }
    title = rng.choice(SERVICES_BY_NAME[impacted].symptoms).format(**values)
    details = rng.sample(SYMPTOM_DETAILS, 2)
    sentences = [details[0].format(**values)]
    if difficulty == "lexical":
        hint_kind = "shared" if culprit.service == "shared-libs" and culprit.kind == "code" else culprit.kind
        sentences.append(rng.choice(KIND_HINTS[hint_kind]).format(**culprit.signals))
    elif difficulty == "hard":
        sentences.append(rng.choice(HARD_HINTS))
    elif rng.random() < 0.5:
        sentences.append(details[1].format(**values))
    rng.shuffle(sentences)
    return title, " ".join(sentences)


def fix_for(rng: random.Random, incident: DemoIncident, culprit: DemoChange, team: list[DemoPerson]) -> DemoChange:
    """The revert or hotfix that closed the incident; it lands after the incident started."""
    landed = incident.started_time + rng.randrange(20 * 60, 6 * 3600)
    author = rng.choice(team)
    if rng.random() < 0.6:
        incident.link_kind = "revert"
        title = f'Revert "{culprit.title}"'
        body = f"This reverts commit {culprit.id}.\n\n{incident.id}: {incident.title}"
        files = [(path, deleted, added) for path, added, deleted in culprit.files]
        kind = "revert"
    else:
        incident.link_kind = "fixes"
        title = f"{culprit.service}: fix regression behind {incident.id}"
        body = f"Fixes: {culprit.id[:12]} (\"{culprit.title}\")\n\n{incident.title}"
        path = culprit.paths[0]
        files = [(path, rng.randint(2, 30), rng.randint(1, 20))]
        kind = "fix"
    change = DemoChange(
        id=new_sha(rng),
        title=title,
        body=body,
        author=author,
        author_time=landed - rng.randrange(300, 3600),
        commit_time=landed,
        landed_time=landed,
        landed_via_merge=False,
        files=files,
        kind=kind,
        service=culprit.service,
    )
    incident.fix_id = change.id
    return change


def first_candidate_time(start: datetime) -> int:
    """Incidents start once a whole window of history exists before them."""
    return int((start + timedelta(days=WINDOW_DAYS)).timestamp())
