"""Which places in the code go with which words, learned from commit history.

A symptom says ``http`` or ``ssl``; the culprit touches ``lib/http.c`` or
``lib/vtls``. Commit titles in the history (``http: fix ...``, ``net/mlx5: ...``)
and the files those commits touched teach that association without any
ownership file. Only commits landed before the period being predicted may be
used to learn it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from tools.rca.signals.terms import path_units, tokens

_SMOOTHING = 5.0
_MAX_UNITS_PER_COMMIT = 40
_MIN_WORD_COUNT = 3
_BODY_CHARS = 300


def commit_words(title: str, body: str) -> set[str]:
    """The words a commit is known by: its title (with any ``subsystem:`` prefix) and the start of its body."""
    return set(tokens(f"{title}\n{body[:_BODY_CHARS]}"))


@dataclass
class ComponentMap:
    """Smoothed lift of a code place given a word: how much more often commits
    whose title uses the word touch that place than commits in general do."""

    word_counts: dict[str, int] = field(default_factory=dict)
    unit_counts: dict[str, int] = field(default_factory=dict)
    pair_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    n_commits: int = 0
    learned_until: float = 0.0

    def lift(self, word: str, unit: str, leave_out: bool = False) -> float:
        """log of P(unit | word) / P(unit), smoothed toward 0 for rare words.

        ``leave_out`` removes one commit that has both (the change being scored),
        so a change learned from does not vouch for itself. A pair the map never
        saw cannot hold that commit (it comes from a repository or period the map
        did not learn), so nothing is left out of it."""
        together = self.pair_counts.get(word, {}).get(unit, 0)
        own = int(leave_out and together > 0)
        word_total = self.word_counts.get(word, 0) - own
        unit_total = self.unit_counts.get(unit, 0) - own
        if word_total <= 0 or unit_total <= 0:
            return 0.0
        base = unit_total / (self.n_commits - own)
        conditional = (together - own + _SMOOTHING * base) / (word_total + _SMOOTHING)
        return max(0.0, math.log(conditional / base))

    def for_incident(self, words: Iterable[str]) -> IncidentComponents:
        """A matcher for one incident's words, memoising lifts across its candidates."""
        return IncidentComponents(self, sorted(word for word in set(words) if word in self.pair_counts))


@lru_cache(maxsize=200_000)
def change_units(paths: tuple[str, ...]) -> frozenset[str]:
    """Every place a change touched (directories and file stems), cached: changes never change."""
    return frozenset(unit for path in paths[:_MAX_UNITS_PER_COMMIT] for unit in path_units(path))


class IncidentComponents:
    """Scores candidate changes against one incident's words.

    Each code place gets a vector of lifts (one per incident word), computed
    once per incident, so scoring a thousand candidates is a few array maxima.
    """

    def __init__(self, component_map: ComponentMap, words: list[str]) -> None:
        self._map = component_map
        self._words = words
        self._vectors: dict[str, np.ndarray | None] = {}

    def _vector(self, unit: str) -> np.ndarray | None:
        if unit not in self._vectors:
            lifts = np.array(
                [self._map.lift(word, unit) if unit in self._map.pair_counts[word] else 0.0 for word in self._words]
            )
            self._vectors[unit] = lifts if lifts.any() else None
        return self._vectors[unit]

    def match(
        self, paths: Sequence[str], own_words: set[str] | None = None, with_pairs: bool = False
    ) -> tuple[float, list[tuple[str, str]]]:
        """Sum over the incident's words of the best lift among the change's places,
        and (with ``with_pairs``) the (word, place) pairs behind it, strongest first.
        ``own_words``: the change's own words when the map learned from it, so its
        share is left out."""
        if not self._words or not paths:
            return 0.0, []
        units = sorted(unit for unit in change_units(tuple(paths)) if self._vector(unit) is not None)
        if not units:
            return 0.0, []
        stacked = np.vstack([self._vector(unit) for unit in units])
        best = stacked.max(axis=0)
        best_units = [units[row] for row in stacked.argmax(axis=0)]
        for index, word in enumerate(self._words):
            if own_words and word in own_words and best[index] > 0:
                best[index], best_units[index] = max((self._map.lift(word, unit, leave_out=True), unit) for unit in units)
        total = float(best.sum())
        if not with_pairs:
            return total, []
        pairs = sorted(
            ((float(best[i]), word, best_units[i]) for i, word in enumerate(self._words) if best[i] > 0), reverse=True
        )
        return total, [(word, unit) for _score, word, unit in pairs]


def learn_component_map(commits: Iterable[tuple[str, str, Sequence[str]]], learned_until: float) -> ComponentMap:
    """Learn from (title, body, paths) of commits that landed before ``learned_until`` (unix time)."""
    word_counts: Counter[str] = Counter()
    unit_counts: Counter[str] = Counter()
    pairs: dict[str, Counter[str]] = defaultdict(Counter)
    n_commits = 0
    for title, body, paths in commits:
        units = {unit for path in paths[:_MAX_UNITS_PER_COMMIT] for unit in path_units(path)}
        if not units:
            continue
        n_commits += 1
        words = commit_words(title, body)
        word_counts.update(words)
        unit_counts.update(units)
        for word in words:
            pairs[word].update(units)
    kept = {word for word, count in word_counts.items() if count >= _MIN_WORD_COUNT}
    return ComponentMap(
        word_counts={word: word_counts[word] for word in kept},
        unit_counts=dict(unit_counts),
        pair_counts={word: dict(pairs[word]) for word in kept},
        n_commits=max(n_commits, 1),
        learned_until=learned_until,
    )
