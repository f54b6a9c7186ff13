"""The local judge: a learned ranker over the retriever's signals, no LLM needed.

It is trained by ``culprit train`` and saved in one model file (data only, see
``knowledge.model_files``): the LightGBM trees in LightGBM's own text format
with the names of its features, the component maps and similar-change indexes
it was trained with and the confidence calibration, so that ranking,
explaining and gating all use the same learned picture of the code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from knowledge.errors import CulpritError
from knowledge.model_files import ModelWriter, leftover_pickle, pickled_model, read_model_file
from tools.rca.answers import CandidateChange, IncidentQuery, JudgedChange
from tools.rca.signals.component_map import ComponentMap
from tools.rca.confidence import ConfidenceModel
from tools.rca.signals.past_incidents import PastIncidents
from tools.rca.signals.features import FEATURE_NAMES, heuristic_score
from tools.rca.signals.similar_changes import SimilarChanges
from tools.rca.judges import model_parts
from tools.rca.judges.ranker_text import DamagedRanker, checked_ranker_text

if TYPE_CHECKING:
    from lightgbm import Booster

MODEL_VERSION = 5
FILE_KIND = "culprit ranker"
FILE_FORMAT = 1
RETRAIN = "retrain with `culprit train`"
PICKLED_NAME = "ranker.joblib"  # where culprit before model format 1 kept the ranker
ALL_REPOSITORIES = ""
TRAINED = "trained"
STARTER = "starter"  # shipped in the package (``tools.rca.judges.starter``), used until a team trains its own
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

    ranker: Booster
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
    origin: str = TRAINED

    @property
    def description(self) -> str:
        """Which model judged, in the words an answer shows."""
        if self.origin == STARTER:
            return (
                f"the starter ranker (trained on {self.n_cases} public cases from {', '.join(self.repos)}; "
                "train your own with `culprit train --from-repo PATH`)"
            )
        return f"the ranker trained on {self.n_cases} cases from {', '.join(self.repos) or 'your history'}"

    def component_map(self, repo: str | None) -> ComponentMap | None:
        return _for_repository(self.component_maps, repo)

    def similar_changes_in(self, repo: str | None) -> SimilarChanges | None:
        return _for_repository(self.similar_changes, repo)

    def _rows(self, batch: Sequence[CandidateChange]) -> np.ndarray:
        rows = [[change.features.get(name, 0.0) for name in self.feature_names] for change in batch]
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(self.feature_names))

    def score(self, batch: Sequence[CandidateChange]) -> np.ndarray:
        if not batch:  # an empty window: LightGBM refuses a 0-row matrix
            return np.empty(0, dtype=np.float64)
        return np.asarray(self.ranker.predict(self._rows(batch)), dtype=np.float64)

    def contributions(self, batch: Sequence[CandidateChange]) -> np.ndarray:
        """Each signal's part of each change's score (LightGBM's ``pred_contrib``), columns in
        ``feature_names`` order; with the expected value left out, a row sums to score minus it."""
        if not batch:
            return np.empty((0, len(self.feature_names)), dtype=np.float64)
        parts = np.asarray(self.ranker.predict(self._rows(batch), pred_contrib=True), dtype=np.float64)
        return parts[:, :-1]


def save_model(model: RankerModel, path: Path) -> Path:
    """As data only (see ``knowledge.model_files``): reading it back never runs code, and
    moving a module never invalidates it."""
    writer = ModelWriter(FILE_KIND, FILE_FORMAT)
    writer.add_text("ranker", model.ranker.model_to_string())
    model_parts.write_component_maps(writer, model.component_maps)
    model_parts.write_past_incidents(writer, model.past_incidents)
    model_parts.write_confidence(writer, model.confidence)
    similar_repos = model_parts.write_similar_changes(writer, model.similar_changes)
    manifest = {
        "model_version": model.version,
        "feature_names": list(model.feature_names),
        "trained_until": model.trained_until,
        "n_cases": model.n_cases,
        "repos": model.repos,
        "uses_embeddings": model.uses_embeddings,
        "similar_changes": similar_repos,
        "origin": model.origin,
    }
    return writer.save(path, manifest)


def load_model(path: Path) -> RankerModel:
    """Read a trained ranker; a missing, foreign or outdated file is a user-fixable error."""
    from lightgbm import Booster
    from lightgbm.basic import LightGBMError

    path = Path(path)
    if not path.exists():
        if (old := leftover_pickle(path, PICKLED_NAME)) is not None:
            raise CulpritError(f"{pickled_model(old)}; {RETRAIN}")
        raise CulpritError(f"no trained ranker at {path}; run `culprit train --cases F --commits F` first")
    model_file = read_model_file(path, FILE_KIND, FILE_FORMAT, CulpritError, RETRAIN)
    manifest = model_file.manifest
    if manifest.get("model_version") != MODEL_VERSION:
        raise model_file.refused(f"is not a ranker of version {MODEL_VERSION}")
    with model_file.rebuilding():
        missing = set(manifest["feature_names"]) - set(FEATURE_NAMES)
        if missing:
            raise model_file.refused(f"expects signals this version lacks ({', '.join(sorted(missing))})")
        try:
            ranker = Booster(model_str=checked_ranker_text(model_file.text("ranker"), len(manifest["feature_names"])))
        except (DamagedRanker, LightGBMError) as error:
            raise model_file.refused(f"has damaged LightGBM trees ({error})") from error
        trained_until, n_cases = model_parts.checked_training(manifest)
        return RankerModel(
            ranker=ranker,
            feature_names=tuple(manifest["feature_names"]),
            component_maps=model_parts.read_component_maps(model_file),
            confidence=model_parts.read_confidence(model_file),
            trained_until=trained_until,
            n_cases=n_cases,
            repos=manifest["repos"],
            uses_embeddings=manifest["uses_embeddings"],
            past_incidents=model_parts.read_past_incidents(model_file),
            similar_changes=model_parts.read_similar_changes(model_file, manifest["similar_changes"]),
            version=manifest["model_version"],
            origin=str(manifest.get("origin", TRAINED)),
        )


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
