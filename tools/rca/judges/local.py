"""The local judge: a learned ranker over the retriever's signals, no LLM needed.

It is trained by ``culprit train`` and saved with joblib together with the
names of its features, the component maps and similar-change indexes it was
trained with and the confidence calibration, so that ranking, explaining and gating all use the
same learned picture of the code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import joblib
import numpy as np

from knowledge.errors import CulpritError
from tools.rca.answers import CandidateChange, IncidentQuery, JudgedChange
from tools.rca.signals.component_map import ComponentMap
from tools.rca.confidence import ConfidenceModel
from tools.rca.signals.past_incidents import PastIncidents
from tools.rca.signals.features import FEATURE_NAMES, heuristic_score
from tools.rca.signals.similar_changes import SimilarChanges

MODEL_VERSION = 4
ALL_REPOSITORIES = ""
T = TypeVar("T")


def _for_repository(per_repository: dict[str, T], repo: str | None) -> T | None:
    """The repository's own entry; for an unknown or unnamed repository, the one over all of them."""
    if repo in per_repository:
        return per_repository[repo]
    if len(per_repository) == 1:
        return next(iter(per_repository.values()))
    return per_repository.get(ALL_REPOSITORIES)


@dataclass
class RankerModel:
    """Everything ``culprit train`` learned, in one file."""

    ranker: Any
    feature_names: tuple[str, ...]
    component_maps: dict[str, ComponentMap]
    confidence: ConfidenceModel
    trained_until: float
    n_cases: int
    repos: list[str] = field(default_factory=list)
    uses_embeddings: bool = True
    past_incidents: PastIncidents | None = None
    similar_changes: dict[str, SimilarChanges] = field(default_factory=dict)
    version: int = MODEL_VERSION

    def component_map(self, repo: str | None) -> ComponentMap | None:
        return _for_repository(self.component_maps, repo)

    def similar_changes_in(self, repo: str | None) -> SimilarChanges | None:
        return _for_repository(self.similar_changes, repo)

    def score(self, batch: Sequence[CandidateChange]) -> np.ndarray:
        rows = np.array([[change.features.get(name, 0.0) for name in self.feature_names] for change in batch])
        return np.asarray(self.ranker.predict(rows), dtype=np.float64)


def save_model(model: RankerModel, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


def load_model(path: Path) -> RankerModel:
    """Read a trained ranker; a missing or foreign file is a user-fixable error."""
    path = Path(path)
    if not path.exists():
        raise CulpritError(f"no trained ranker at {path}; run `culprit train --cases F --commits F` first")
    try:
        model = joblib.load(path)
    except Exception as error:  # joblib raises many kinds for a corrupt file
        raise CulpritError(f"cannot read the ranker at {path} ({error}); retrain with `culprit train`") from error
    if not isinstance(model, RankerModel) or model.version != MODEL_VERSION:
        raise CulpritError(f"{path} is not a ranker of version {MODEL_VERSION}; retrain with `culprit train`")
    missing = set(model.feature_names) - set(FEATURE_NAMES)
    if missing:
        raise CulpritError(f"{path} expects signals this version lacks ({', '.join(sorted(missing))}); retrain it")
    return model


class LocalJudge:
    """Ranks a batch with the learned model, or with the heuristic blend when none is trained."""

    def __init__(self, model: RankerModel | None = None) -> None:
        self.model = model
        self.name = "local" if model is not None else "heuristic"

    def rank(self, incident: IncidentQuery, batch: Sequence[CandidateChange], keep: int) -> list[JudgedChange]:
        if not batch:
            return []
        if self.model is not None:
            scores = self.model.score(batch)
        else:
            scores = np.array([heuristic_score(change.features) for change in batch])
        order = np.argsort(-scores, kind="stable")[:keep]
        return [JudgedChange(batch[index].change_id, float(scores[index]), self.name) for index in order]
