"""A small labeled set from the demo generator and one embedded classifier trained on it per session."""

from __future__ import annotations

import pytest

from knowledge.demo_reports import demo_reports
from tools.classifiers.embedded import EmbeddedClassifier
from tools.redaction import redact


@pytest.fixture(scope="session")
def labeled_reports() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(train, test): 180 and 60 demo reports with their true categories."""
    reports = demo_reports(days=21, seed=3).reports[::4][:240]
    return reports[:180], reports[180:]


@pytest.fixture(scope="session")
def classifier(labeled_reports: tuple[list[dict[str, str]], list[dict[str, str]]]) -> EmbeddedClassifier:
    """The real MiniLM under a trained head (loaded once: the model takes seconds)."""
    train, _ = labeled_reports
    return EmbeddedClassifier.train([redact(r["text"]) for r in train], [r["category"] for r in train])
