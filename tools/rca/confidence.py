"""How likely the five suggestions hold the root cause, calibrated on held-out history.

A ranker's scores say which change is best, not whether any is right. A
logistic (Platt) model over the shape of the final scores (margin, entropy,
how many candidates there were) turns them into a probability that was
checked against past incidents the ranker never trained on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from tools.rca.answers import JudgedChange

CONFIDENCE_FEATURES = ("margin_top2", "margin_top5", "entropy", "top_score", "log_candidates")


def confidence_features(winners: Sequence[JudgedChange], n_candidates: int) -> list[float]:
    scores = [choice.score for choice in winners] or [0.0]
    padded = scores + [scores[-1]] * (5 - len(scores))
    top = np.array(padded[:5], dtype=np.float64)
    weights = np.exp(top - top.max())
    weights /= weights.sum()
    entropy = float(-(weights * np.log(weights + 1e-12)).sum())
    return [
        float(top[0] - top[1]),
        float(top[0] - top[4]),
        entropy,
        float(top[0]),
        math.log1p(n_candidates),
    ]


@dataclass
class ConfidenceModel:
    """Platt scaling over :data:`CONFIDENCE_FEATURES`, or a fixed prior when history was too thin."""

    model: LogisticRegression | None
    prior: float

    def probability(self, winners: Sequence[JudgedChange], n_candidates: int) -> float:
        if not winners:
            return 0.0
        if n_candidates <= len(winners):
            return 1.0
        if self.model is None:
            return self.prior
        row = np.array([confidence_features(winners, n_candidates)])
        return float(self.model.predict_proba(row)[0, 1])


def calibrator() -> LogisticRegression:
    """The Platt model's settings, for fitting one and for reading one back from a model file."""
    return LogisticRegression(C=1.0, max_iter=1000)


def fit_confidence(rows: list[list[float]], hits: list[bool]) -> ConfidenceModel:
    """Fit on held-out cases: ``hits[i]`` says whether case i's five held a culprit."""
    prior = (sum(hits) + 1) / (len(hits) + 2)  # Laplace: a few held-out hits never make it certain
    if len(rows) < 20 or len(set(hits)) < 2:
        return ConfidenceModel(model=None, prior=prior)
    model = calibrator()
    model.fit(np.array(rows), np.array(hits, dtype=int))
    return ConfidenceModel(model=model, prior=prior)
