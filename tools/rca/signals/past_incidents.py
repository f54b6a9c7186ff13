"""What past investigations say about a new incident.

Regressions cluster: the places that broke last month break again, and an
incident worded like an old one often has its cause in the same files. Each
resolved incident (its text and the files its culprit touched) is kept with
its start time, and a new incident consults only those that started before it,
so training examples and backtests never see their own answer.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from knowledge.changes import ChangeRecord
from tools.rca.answers import IncidentQuery
from tools.rca.signals.component_map import ComponentMap, change_units
from tools.rca.signals.terms import tokens

_NEIGHBOURS = 10
_K1, _B = 1.2, 0.75
_PRIOR_SMOOTHING = 5.0


@dataclass(frozen=True)
class PastIncident:
    repo: str
    started: float
    terms: Counter[str]
    culprit_units: frozenset[str]


@dataclass
class PastIncidents:
    """Resolved incidents by start time, with where each culprit lay."""

    incidents: list[PastIncident] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.incidents.sort(key=lambda incident: incident.started)
        self._starts = [incident.started for incident in self.incidents]
        self._culprit_times: dict[tuple[str, str], list[float]] = defaultdict(list)
        for incident in self.incidents:
            for unit in incident.culprit_units:
                self._culprit_times[(incident.repo, unit)].append(incident.started)

    def __len__(self) -> int:
        return len(self.incidents)

    def count_before(self, started: float, repo: str | None) -> int:
        return len(self._before(started, repo))

    def _before(self, started: float, repo: str | None) -> list[PastIncident]:
        known = self.incidents[: bisect.bisect_left(self._starts, started)]
        return [incident for incident in known if repo is None or incident.repo == repo]

    def neighbours(self, query: IncidentQuery) -> list[tuple[float, PastIncident]]:
        """The earlier incidents worded most like this one (BM25), weights relative to the best."""
        pool = self._before(query.started_at.timestamp(), query.repo)
        words = sorted(set(tokens(query.full_text)))  # a fixed order: float sums must not follow the hash seed
        if not pool or not words:
            return []
        lengths = np.array([sum(incident.terms.values()) for incident in pool], dtype=np.float64)
        norm = _K1 * (1 - _B + _B * lengths / max(float(lengths.mean()), 1.0))
        scores = np.zeros(len(pool))
        for word in words:
            counts = np.array([incident.terms.get(word, 0) for incident in pool], dtype=np.float64)
            containing = int((counts > 0).sum())
            if containing:
                idf = math.log(1 + (len(pool) - containing + 0.5) / (containing + 0.5))
                scores += idf * counts * (_K1 + 1) / (counts + norm)
        order = [index for index in np.argsort(-scores)[:_NEIGHBOURS] if scores[index] > 0]
        if not order:
            return []
        best = scores[order[0]]
        return [(float(scores[index] / best), pool[index]) for index in order]

    def culprit_count(self, repo: str | None, unit: str, before: float) -> int:
        if repo is None:
            return sum(
                bisect.bisect_left(times, before) for (_, place), times in self._culprit_times.items() if place == unit
            )
        return bisect.bisect_left(self._culprit_times.get((repo, unit), []), before)


def unit_weight(component_map: ComponentMap | None, unit: str) -> float:
    """How specific a place is: log inverse share of commits touching it (rarer = more telling)."""
    if component_map is None:
        return 1.0
    count = component_map.unit_counts.get(unit, 0)
    return math.log((component_map.n_commits + 1) / (count + 1))


def past_incident_signals(
    query: IncidentQuery,
    candidates: Sequence[ChangeRecord],
    past: PastIncidents,
    component_map: ComponentMap | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate: (similar incidents' culprits share its places, its places broke before).

    The first sums, over the earlier incidents worded most like this one, the
    specificity of the most specific place the candidate shares with that
    incident's culprit. The second is the smoothed lift of past culprits among
    changes touching the candidate's places."""
    n = len(candidates)
    similar = np.zeros(n)
    prior = np.zeros(n)
    if not len(past) or not n:
        return similar, prior
    started = query.started_at.timestamp()
    neighbours = past.neighbours(query)
    culprits_before = max(past.count_before(started, query.repo), 1)
    commits = component_map.n_commits if component_map is not None else 0
    place_prior: dict[str, float] = {}
    for index, change in enumerate(candidates):
        units = change_units(tuple(change.paths))
        for weight, incident in neighbours:
            shared = units & incident.culprit_units
            if shared:
                similar[index] += weight * max(unit_weight(component_map, unit) for unit in shared)
        if commits:
            best = 0.0
            for unit in units:
                if unit not in place_prior:
                    share = (component_map.unit_counts.get(unit, 0) + 1) / (commits + 1)  # type: ignore[union-attr]
                    broke = past.culprit_count(query.repo, unit, started)
                    lift = (broke + _PRIOR_SMOOTHING * share) / ((culprits_before + _PRIOR_SMOOTHING) * share)
                    place_prior[unit] = max(0.0, math.log(lift))
                best = max(best, place_prior[unit])
            prior[index] = best
    return similar, prior


def past_incidents_from(records: Sequence[tuple[str, float, str, Sequence[Sequence[str]]]]) -> PastIncidents:
    """From (repo, start time, incident text, paths of each culprit) of resolved incidents."""
    incidents = []
    for repo, started, text, culprit_paths in records:
        units = frozenset(unit for paths in culprit_paths for unit in change_units(tuple(paths)))
        if units:
            incidents.append(PastIncident(repo, started, Counter(tokens(text)), units))
    return PastIncidents(incidents)
