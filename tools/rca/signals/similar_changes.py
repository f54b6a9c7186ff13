"""Where changes described like this incident went: the places the nearest earlier changes touched.

The component map weighs each word of an incident on its own. This reads the
incident whole: it finds the earlier changes whose descriptions are most like
it and lets every place they touched (directories, file stems and, where the
history records them, the functions their hunks were in) collect their
similarity. Descriptions are cut the way a symptom report is (title
without its ``subsystem:`` prefix, the start of the body, no paths or code
names), so a short report meets them on equal terms. A candidate touching a
place that collected far more than its everyday share is in the part of the
code the incident is about.

Only changes older than every candidate vote: the candidates are ranked by
other signals, and a training case's own fix (its incident text) lands after
it, so it never vouches for its culprit.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import TfidfVectorizer

from knowledge.changes import ChangeRecord
from tools.rca.signals.component_map import change_units
from tools.rca.history.cases import symptom_only
from tools.rca.signals.terms import tokens

NEIGHBOURS = 40
_BODY_CHARS = 600
_SMOOTHING = 0.02
_TELLING_LIFT = math.log(2.0)


def description(title: str, body: str) -> str:
    """A change told as a symptom report would tell it."""
    return " ".join(symptom_only(title, body[:_BODY_CHARS]))


def _function_places(functions: tuple[str, ...]) -> frozenset[str]:
    return frozenset(f"{name}()" for name in functions)


@lru_cache(maxsize=200_000)
def change_places(paths: tuple[str, ...], functions: tuple[str, ...] = ()) -> frozenset[str]:
    """The places a change touched: its directories and file stems, and each function as ``name()``."""
    return change_units(paths) | _function_places(functions)


@dataclass
class Neighbourhood:
    """The places the nearest earlier changes touched, each with its share of their similarity."""

    shares: dict[str, float]
    counts: dict[str, int]
    base_rates: dict[str, float]
    n_neighbours: int

    def lift(self, place: str) -> float:
        """log of (share among the neighbours) / (share among all changes), smoothed."""
        return math.log((self.shares[place] + _SMOOTHING) / (self.base_rates.get(place, 0.0) + _SMOOTHING))

    def score(self, change: ChangeRecord) -> tuple[float, float, float]:
        """(best lift, best share) over the directories and file stems a change touched, and the
        best share over the functions it touched; 0 where no neighbour went.

        Functions are kept apart: one neighbour in a function is a large lift over its
        tiny everyday share, which would drown the evidence of the places around it."""
        places = [place for place in change_units(change.paths) if place in self.shares]
        functions = [self.shares[place] for place in _function_places(change.functions) if place in self.shares]
        best_function = max(functions, default=0.0)
        if not places:
            return 0.0, 0.0, best_function
        lift = max(0.0, max(self.lift(place) for place in places))
        return lift, max(self.shares[place] for place in places), best_function

    def strongest(self, change: ChangeRecord) -> tuple[str, int, float] | None:
        """The most telling place a change shares with the neighbours: (place, how many of them
        touched it, its everyday share), if they touched it at least twice as often as usual."""
        places = [place for place in change_units(change.paths) if place in self.shares]
        if not places:
            return None
        best = max(places, key=lambda place: (self.lift(place), len(place), place))
        if self.lift(best) < _TELLING_LIFT:
            return None
        return best, self.counts[best], self.base_rates.get(best, 0.0)


@dataclass
class SimilarChanges:
    """TF-IDF index of past change descriptions, in landing order, with the places each touched."""

    vectorizer: TfidfVectorizer
    matrix: csr_matrix
    landed: np.ndarray
    places: list[frozenset[str]]
    base_rates: dict[str, float]

    def __len__(self) -> int:
        return len(self.places)

    def neighbourhood(self, text: str, before: float) -> Neighbourhood:
        """The ``NEIGHBOURS`` changes landed before ``before`` (unix time) described most like ``text``."""
        count = int(np.searchsorted(self.landed, before))
        empty = Neighbourhood({}, {}, self.base_rates, 0)
        if count == 0 or not text.strip():
            return empty
        similarity = (self.matrix[:count] @ self.vectorizer.transform([text]).T).toarray().ravel()
        top = min(NEIGHBOURS, count)
        nearest = [int(i) for i in np.argpartition(-similarity, top - 1)[:top] if similarity[i] > 0]
        total = float(sum(similarity[i] for i in nearest))
        if total <= 0:
            return empty
        shares: Counter[str] = Counter()
        counts: Counter[str] = Counter()
        for index in nearest:
            for place in self.places[index]:
                shares[place] += similarity[index] / total
                counts[place] += 1
        return Neighbourhood(dict(shares), dict(counts), self.base_rates, len(nearest))

    def around(self, text: str, candidates: Sequence[ChangeRecord]) -> Neighbourhood:
        """The neighbourhood the candidates of one incident are scored against: only changes
        older than every candidate vote."""
        if not candidates:
            return Neighbourhood({}, {}, self.base_rates, 0)
        return self.neighbourhood(text, min(change.landed_time for change in candidates).timestamp())


def index_vectorizer() -> TfidfVectorizer:
    """The TF-IDF settings of the index, for learning one and for reading one back from a model file."""
    return TfidfVectorizer(tokenizer=tokens, lowercase=False, token_pattern=None, sublinear_tf=True, min_df=2)


def learn_similar_changes(changes: Iterable[ChangeRecord]) -> SimilarChanges | None:
    """Index the descriptions of past changes and the places each touched; None when too few to learn from."""
    rows = sorted(
        (
            (change.landed_time.timestamp(), description(change.title, change.body),
             change_places(change.paths, change.functions))
            for change in changes if change.paths
        ),
        key=lambda row: row[0],
    )  # fmt: skip
    if len(rows) < 2:
        return None
    vectorizer = index_vectorizer()
    try:
        matrix = vectorizer.fit_transform([text for _landed, text, _places in rows])
    except ValueError:  # no word occurs twice
        return None
    places = [row[2] for row in rows]
    frequency = Counter(place for touched in places for place in touched)
    return SimilarChanges(
        vectorizer=vectorizer,
        matrix=matrix.tocsr(),
        landed=np.array([row[0] for row in rows], dtype=np.float64),
        places=places,
        base_rates={place: count / len(places) for place, count in frequency.items()},
    )
