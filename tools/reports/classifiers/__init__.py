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

from knowledge.config import Settings

OTHER = "other"


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


def configured_classifier(settings: Settings) -> Classifier | None:
    """The trained embedded classifier if there is one, else the LLM classifier if vLLM is set."""
    path = classifier_path(settings.data_dir)
    if path.exists():
        return _load_embedded(path, path.stat().st_mtime)
    if settings.llm_configured:
        from tools.llm.client import LLMEndpoint
        from tools.reports.classifiers.llm import LLMClassifier, categories_from_database

        return LLMClassifier(
            LLMEndpoint.from_settings(settings), categories_from_database(settings.resolved_database_url)
        )
    return None
