"""Report classifiers: one protocol, an embedded model and an LLM, chosen by configuration.

Both return a category and a confidence for every report; a prediction below
``settings.other_confidence`` becomes ``other`` so uncertain reports are
counted instead of silently mislabeled.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import structlog

from knowledge.config import Settings

OTHER = "other"
PICKLED_NAME = "report_classifier.joblib"  # where culprit before model format 1 kept the embedded classifier
RETRAIN = "`culprit reports train FILE`"  # the command that makes a classifier file
log = structlog.get_logger(__name__)
# Leftover pickles already logged: the worker asks for the classifier with every batch.
_WARNED_PICKLED: set[str] = set()


@dataclass(frozen=True)
class Prediction:
    """The category chosen for one report, how sure the classifier is (0..1) and, when the
    classifier can say, why: ``{"neighbours": [{text, category, similarity}], "words": [{term, weight}]}``."""

    category: str
    confidence: float
    why: dict[str, Any] | None = None


class Classifier(Protocol):
    """Anything that puts reports into categories; evaluators and intake depend on this only."""

    @property
    def categories(self) -> list[str]: ...

    def classify(self, texts: list[str]) -> list[Prediction]: ...


def with_other(predictions: list[Prediction], threshold: float) -> list[Prediction]:
    """Low-confidence predictions become ``other``, keeping the confidence for the record."""
    return [p if p.confidence >= threshold else replace(p, category=OTHER) for p in predictions]


def classifier_path(data_dir: Path) -> Path:
    """Where ``culprit reports train`` writes the embedded classifier."""
    return data_dir / "models" / "report_classifier.model"


@lru_cache(maxsize=2)
def _load_embedded(path: Path, _modified: float) -> Classifier:
    """One load per trained file: every HTTP batch and Slack message reuses it until it is retrained."""
    from tools.reports.classifiers.embedded import EmbeddedClassifier

    return EmbeddedClassifier.load(path)


def unread_classifier(data_dir: Path) -> str | None:
    """What to tell the team when only the pickle an earlier culprit saved is where its classifier
    would be: without it, reports went unclassified (or to the LLM) and nothing said why."""
    from knowledge.model_files import leftover_pickle, pickled_model  # scikit-learn: not for `culprit --help`

    old = leftover_pickle(classifier_path(data_dir), PICKLED_NAME)
    return None if old is None else f"{pickled_model(old)}; retrain with {RETRAIN}"


def configured_classifier(settings: Settings) -> Classifier | None:
    """The trained embedded classifier if there is one, else the LLM classifier if vLLM is set.

    A leftover pickle in place of the first is logged once per process (``unread_classifier``)."""
    path = classifier_path(settings.data_dir)
    if path.exists():
        return _load_embedded(path, path.stat().st_mtime)
    if (unread := unread_classifier(settings.data_dir)) is not None and unread not in _WARNED_PICKLED:
        _WARNED_PICKLED.add(unread)
        log.warning("report_classifier_unreadable", path=str(path.with_name(PICKLED_NAME)), error=unread)
    if settings.llm_configured:
        from tools.llm.client import LLMEndpoint
        from tools.reports.classifiers.llm import LLMClassifier, categories_from_database

        return LLMClassifier(
            LLMEndpoint.from_settings(settings), categories_from_database(settings.resolved_database_url)
        )
    return None
