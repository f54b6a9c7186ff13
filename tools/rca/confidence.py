"""How likely the five suggestions hold the root cause, calibrated on held-out history.

A ranker's scores say which change is best, not whether any is right. A
logistic (Platt) model over the shape of the final scores (margins, entropy,
how much of the window's score mass the five hold, how many candidates and
query words there were) turns them into a probability that was checked
against past incidents the ranker never trained on. Which of a few such
calibrations is used is chosen leave-one-repository-out: each is fitted on
every training repository but one and scored on the one left out, so the
chosen one is the one that transfers to a repository it did not see.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression

from tools.rca.answers import CandidateChange, JudgedChange

CONFIDENCE_FEATURES = (
    "margin_top2", "margin_top5", "entropy", "top_score", "log_candidates", "mass_logit", "log_query_terms",
    "mass_by_words",
)
# The calibrations tried, by name: (columns of CONFIDENCE_FEATURES, inverse regularisation C).
CALIBRATIONS: dict[str, tuple[tuple[int, ...], float]] = {
    "score shape": ((0, 1, 2, 3, 4), 1.0),
    "score shape + mass + words": ((0, 1, 2, 3, 4, 5, 6), 1.0),
    "score shape + mass + words, strong prior": ((0, 1, 2, 3, 4, 5, 6), 0.05),
    "mass + words": ((5, 6), 1.0),
    "mass + candidates + words": ((4, 5, 6), 1.0),
    # The score mass means more when the report says more: full texts and symptoms apart.
    "mass by words + shape": ((0, 3, 4, 5, 6, 7), 1.0),
}
BINS = 10
CURVE_LEVELS = tuple(round(level / 20, 2) for level in range(1, 20))
_MIN_ROWS = 20


def query_term_count(kept: Sequence[CandidateChange]) -> int:
    """How many distinct words the incident had (every candidate's ``query_terms`` signal holds it)."""
    return round(math.expm1(kept[0].features.get("query_terms", 0.0))) if kept else 0


def confidence_features(
    winners: Sequence[JudgedChange],
    n_candidates: int,
    kept_scores: np.ndarray | None = None,
    n_query_terms: int = 0,
) -> list[float]:
    """The shape of one answer's scores. ``kept_scores``: the ranker's scores of every kept
    candidate, whose softmax mass on the five is the ranker's own guess that they hold the cause."""
    scores = [choice.score for choice in winners] or [0.0]
    padded = scores + [scores[-1]] * (5 - len(scores))
    top = np.array(padded[:5], dtype=np.float64)
    weights = np.exp(top - top.max())
    weights /= weights.sum()
    entropy = float(-(weights * np.log(weights + 1e-12)).sum())
    everyone = np.asarray(kept_scores if kept_scores is not None and len(kept_scores) else top, dtype=np.float64)
    best = max(float(everyone.max()), float(top.max()))
    mass = float(np.exp(np.array(scores) - best).sum() / max(np.exp(everyone - best).sum(), 1e-12))
    mass = min(max(mass, 1e-4), 1 - 1e-4)
    return [
        float(top[0] - top[1]),
        float(top[0] - top[4]),
        entropy,
        float(top[0]),
        math.log1p(n_candidates),
        math.log(mass / (1 - mass)),
        math.log1p(n_query_terms),
        math.log(mass / (1 - mass)) * math.log1p(n_query_terms),
    ]


@dataclass
class ConfidenceModel:
    """A chosen Platt calibration over some of :data:`CONFIDENCE_FEATURES`, or a prior when
    history was too thin; with what it was chosen on and its precision/reach curve."""

    model: LogisticRegression | None
    prior: float
    method: str = "score shape"
    loro_ece: dict[str, float] = field(default_factory=dict)
    curve: list[dict[str, float]] = field(default_factory=list)

    @property
    def columns(self) -> tuple[int, ...]:
        return CALIBRATIONS[self.method][0]

    def probability(
        self,
        winners: Sequence[JudgedChange],
        n_candidates: int,
        kept_scores: np.ndarray | None = None,
        n_query_terms: int = 0,
    ) -> float:
        if not winners:
            return 0.0
        if self.model is None:
            return self.prior
        row = np.array(confidence_features(winners, n_candidates, kept_scores, n_query_terms))[list(self.columns)]
        return float(self.model.predict_proba(row.reshape(1, -1))[0, 1])

    def threshold_for(self, target_precision: float) -> float | None:
        """The lowest confidence whose held-out answers were right at least ``target_precision``
        of the time (from the leave-one-repository-out curve); None when none was."""
        for point in self.curve:
            if point["precision"] >= target_precision and point["answered"] >= 10:
                return point["threshold"]
        return None


def calibrator(c: float = 1.0) -> LogisticRegression:
    """The Platt model's settings, for fitting one and for reading one back from a model file."""
    return LogisticRegression(C=c, max_iter=2000)


def calibration_report(confidences: Sequence[float], hits: Sequence[bool], bins: int = BINS) -> dict[str, object]:
    """Expected calibration error, Brier score and the reliability bins (equal width; empty ones kept)."""
    conf = np.asarray(confidences, dtype=np.float64)
    hit = np.asarray(hits, dtype=np.float64)
    rows = []
    ece = 0.0
    for index in range(bins):
        lo, hi = index / bins, (index + 1) / bins
        inside = (conf >= lo) & ((conf < hi) if index < bins - 1 else (conf <= hi))
        n = int(inside.sum())
        mean_conf = float(conf[inside].mean()) if n else 0.0
        rate = float(hit[inside].mean()) if n else 0.0
        ece += n * abs(mean_conf - rate)
        rows.append({"lo": lo, "hi": hi, "n": n, "confidence": round(mean_conf, 4), "hit_rate": round(rate, 4)})
    total = max(len(conf), 1)
    brier = float(((conf - hit) ** 2).mean()) if len(conf) else 0.0
    return {"ece": round(ece / total, 4), "brier": round(brier, 4), "bins": rows}


def precision_reach_curve(confidences: Sequence[float], hits: Sequence[bool]) -> list[dict[str, float]]:
    conf = np.asarray(confidences, dtype=np.float64)
    hit = np.asarray(hits, dtype=bool)
    curve = []
    for level in CURVE_LEVELS:
        answered = conf >= level
        precision = float(hit[answered].mean()) if answered.any() else 0.0
        curve.append({
            "threshold": level, "precision": round(precision, 4),
            "reach": round(float(answered.mean()) if len(conf) else 0.0, 4), "answered": int(answered.sum()),
        })
    return curve


def _fit(method: str, rows: np.ndarray, hits: np.ndarray) -> LogisticRegression:
    columns, c = CALIBRATIONS[method]
    model = calibrator(c)
    model.fit(rows[:, list(columns)], hits)
    return model


def _leave_one_repository_out(
    method: str, rows: np.ndarray, hits: np.ndarray, repos: np.ndarray
) -> tuple[dict[str, float], np.ndarray] | None:
    """ECE on each repository by a calibration fitted on the others, and those out-of-repository confidences."""
    predicted = np.zeros(len(rows))
    ece = {}
    for repo in sorted(set(repos)):
        held = repos == repo
        if len(set(hits[~held])) < 2 or (~held).sum() < _MIN_ROWS:
            return None
        model = _fit(method, rows[~held], hits[~held])
        predicted[held] = model.predict_proba(rows[held][:, list(CALIBRATIONS[method][0])])[:, 1]
        ece[str(repo)] = float(calibration_report(predicted[held], hits[held])["ece"])  # type: ignore[arg-type]
    return ece, predicted


def fit_confidence(rows: list[list[float]], hits: list[bool], repos: Sequence[str] | None = None) -> ConfidenceModel:
    """Fit on held-out cases: ``hits[i]`` says whether case i's five held a culprit.

    With ``repos`` (two or more), each calibration in :data:`CALIBRATIONS` is scored
    leave-one-repository-out and the one with the lowest Brier score there is kept
    (refitted on all rows), with its per-repository ECE; the curve for a target precision comes from the
    out-of-repository confidences, so it was measured on unseen repositories too."""
    prior = (sum(hits) + 1) / (len(hits) + 2)  # Laplace: a few held-out hits never make it certain
    if len(rows) < _MIN_ROWS or len(set(hits)) < 2:
        return ConfidenceModel(model=None, prior=prior)
    matrix, labels = np.array(rows), np.array(hits, dtype=int)
    method, loro, curve = "score shape", {}, []
    if repos is not None and len(set(repos)) > 1:
        tried = {name: _leave_one_repository_out(name, matrix, labels, np.array(repos)) for name in CALIBRATIONS}
        scored = {name: result for name, result in tried.items() if result is not None}
        if scored:
            # Brier, not ECE: a calibration that always says the base rate has a tiny ECE and tells nothing.
            method = min(scored, key=lambda name: (float(((scored[name][1] - labels) ** 2).mean()), name))
            loro = {repo: round(value, 4) for repo, value in scored[method][0].items()}
            curve = precision_reach_curve(scored[method][1], labels.astype(bool))
    if not curve:
        model = _fit(method, matrix, labels)
        curve = precision_reach_curve(model.predict_proba(matrix[:, list(CALIBRATIONS[method][0])])[:, 1], labels.astype(bool))
    return ConfidenceModel(model=_fit(method, matrix, labels), prior=prior, method=method, loro_ece=loro, curve=curve)


def hit_rate_words(confidence: float) -> str:
    """The calibrated confidence as a responder says it: how often the cause was among five like these."""
    tenths = round(confidence * 10)
    if confidence >= 0.95:
        times = "more than 9 times in 10"
    elif tenths <= 0:
        times = "less than once in 10"
    elif tenths == 1:
        times = "about once in 10"
    else:
        times = f"{tenths} times in 10"
    return f"In past incidents like this, the cause was among these five {times}."


@dataclass(frozen=True)
class Assessment:
    """The gate's confidence, whether it is calibrated (and if not, why), and the hit rate in words."""

    confidence: float
    calibrated: bool
    uncalibrated_because: str = ""
    hit_rate: str = ""


NO_RANKER = (
    "no trained ranker: the built-in blend ranked these, and how often its five hold the cause was never "
    "measured (the figure is the share of the blend's score the five hold); train one with `culprit train`"
)


def assess(
    calibration: ConfidenceModel | None,
    winners: Sequence[JudgedChange],
    n_candidates: int,
    kept_scores: np.ndarray,
    n_query_terms: int,
) -> Assessment:
    """Always a computed confidence; labelled uncalibrated, with the reason, where history cannot vouch for it."""
    if not winners:
        return Assessment(0.0, True)
    if calibration is None:
        mass = math.exp(confidence_features(winners, n_candidates, kept_scores, n_query_terms)[5])
        return Assessment(round(mass / (1 + mass), 4), False, NO_RANKER)
    confidence = calibration.probability(winners, n_candidates, kept_scores, n_query_terms)
    if n_candidates <= len(winners):
        return Assessment(
            confidence, False,
            f"only {n_candidates} change{'s' if n_candidates > 1 else ''} landed in the window and all are shown: "
            "whether the cause is among them depends on it having landed in the window at all, which past incidents cannot measure",
        )
    if calibration.model is None:
        return Assessment(confidence, False, "the training history was too short to calibrate; this is its held-out hit rate")
    return Assessment(confidence, True, hit_rate=hit_rate_words(confidence))
