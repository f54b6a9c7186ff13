"""Backtests: replay past incidents through the whole pipeline and score the answers.

Per repository the cases are split by incident time; the earlier part trains
the local judge (unless a model is given), the later part is answered using
only each case's incident fields and candidates. The same cases are also
ranked by BM25 and newest-first, so every number has a baseline beside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from knowledge.changes import ChangeRecord
from knowledge.ingest.history_files import HistoryCase
from tools.rca.answers import IncidentQuery, RcaAnswer
from tools.rca.confidence import calibration_report
from tools.rca.embeddings import ChangeEmbeddings
from tools.rca.history.cases import History, case_candidates, case_query, culprits, split_by_time
from tools.rca.judges.protocol import Judge
from tools.rca.judges.local import RankerModel
from tools.rca.history.training import train_model
from tools.rca.resources import RcaResources, gate_threshold
from tools.rca.retrieval import DEFAULT_KEEP
from tools.rca.signals.features import bm25_scores

# The pipeline under test: the answer and the ids the retriever kept (for its recall).
AnswerFn = Callable[[IncidentQuery, Sequence[ChangeRecord], RcaResources, Judge | None], tuple[RcaAnswer, list[str]]]
# Called with a new stage's description and size, or with None and a step count.
Progress = Callable[[str | None, int], None]
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class CaseOutcome:
    """Where the culprit landed for one case (1-based; None when not found), for us and the baselines."""

    case_id: str
    repo: str
    rank: int | None
    retained: bool
    confidence: float
    latency_ms: float
    bm25_rank: int | None
    recency_rank: int | None
    notes: list[str] = field(default_factory=list)
    unavailable_signals: list[str] = field(default_factory=list)


def _rank_of(order: Sequence[str], truth: set[str]) -> int | None:
    for position, change_id in enumerate(order, start=1):
        if change_id in truth:
            return position
    return None


def _ranking_metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    n = max(len(ranks), 1)
    return {
        "top1": round(sum(1 for rank in ranks if rank == 1) / n, 4),
        "top5": round(sum(1 for rank in ranks if rank is not None and rank <= 5) / n, 4),
        "mrr": round(sum(1.0 / rank for rank in ranks if rank) / n, 4),
    }


def summarise(outcomes: Sequence[CaseOutcome], threshold: float) -> dict[str, object]:
    """The headline numbers: ranking quality, recall, gate precision/reach, latency, baselines."""
    hits = [outcome.rank is not None and outcome.rank <= 5 for outcome in outcomes]
    confidences = np.array([outcome.confidence for outcome in outcomes])
    latencies = np.array([outcome.latency_ms for outcome in outcomes]) if outcomes else np.zeros(1)

    def gate_at(level: float) -> dict[str, float]:
        answered = confidences >= level
        reach = float(answered.mean()) if len(outcomes) else 0.0
        precision = float(np.array(hits)[answered].mean()) if answered.any() else 0.0
        return {"threshold": level, "precision": round(precision, 4), "reach": round(reach, 4)}

    summary: dict[str, object] = _ranking_metrics([outcome.rank for outcome in outcomes])
    summary.update(
        {
            "recall": round(sum(outcome.retained for outcome in outcomes) / max(len(outcomes), 1), 4),
            "gate": gate_at(threshold),
            "curve": [gate_at(level) for level in THRESHOLDS],
            "baselines": {
                "bm25": _ranking_metrics([outcome.bm25_rank for outcome in outcomes]),
                "recency": _ranking_metrics([outcome.recency_rank for outcome in outcomes]),
            },
            "latency_ms": {
                "p50": round(float(np.percentile(latencies, 50)), 2),
                "p95": round(float(np.percentile(latencies, 95)), 2),
            },
            "calibration": calibration_report(confidences, hits),
            "n_cases": len(outcomes),
            # Cases answered without a signal because it raised (their evidence was left out).
            "signal_failures": dict(Counter(signal for outcome in outcomes for signal in outcome.unavailable_signals)),
        }
    )
    return summary


def replay_case(
    case: HistoryCase,
    history: History,
    resources: RcaResources,
    answer_fn: AnswerFn,
    judge: Judge | None,
    symptom: bool,
) -> CaseOutcome:
    """Answer one past incident as if it were happening now, and see where the culprit landed."""
    query = case_query(case, symptom)
    candidates = case_candidates(case, history.commits)
    truth = culprits(case)
    result, retained = answer_fn(query, candidates, resources, judge)
    finalists = [suggestion.change_id for suggestion in result.suggestions]
    # Beyond the five, the rest of the retained changes in retrieval order, so MRR is comparable.
    ranking = finalists + [change_id for change_id in retained if change_id not in set(finalists)]
    newest_first = [change.id for change in candidates]
    bm25 = bm25_scores(query, candidates)
    by_bm25 = [newest_first[index] for index in np.argsort(-bm25, kind="stable")]
    return CaseOutcome(
        case_id=case.case_id,
        repo=case.repo,
        rank=_rank_of(ranking, truth),
        retained=bool(truth & set(retained)),
        confidence=result.confidence,
        latency_ms=result.timings_ms.get("total", 0.0),
        bm25_rank=_rank_of(by_bm25, truth),
        recency_rank=_rank_of(newest_first, truth),
        notes=result.notes,
        unavailable_signals=[missing.signal for missing in result.unavailable_evidence],
    )


Splits = dict[str, tuple[list[HistoryCase], list[HistoryCase]]]


def split_repositories(history: History, train_fraction: float) -> Splits:
    """Per repository: (earlier cases, later cases) by incident time."""
    return {
        repo: split_by_time([case for case in history.cases if case.repo == repo], train_fraction)
        for repo in history.repos()
    }


def train_on_earlier(
    history: History,
    splits: Splits,
    embeddings: ChangeEmbeddings | None,
    keep: int = DEFAULT_KEEP,
    progress: Progress | None = None,
) -> RankerModel:
    """One ranker on every repository's earlier cases; each component map learns only
    from commits landed before its repository's first later case."""
    train = [case for earlier, _later in splits.values() for case in earlier]
    cutoffs = {repo: float(later[0].incident.time) for repo, (_earlier, later) in splits.items() if later}
    if progress:
        progress(f"training on the earlier {len(train)} cases of {len(splits)} repositories", 2 * len(train))
    return train_model(history, train, embeddings, keep, (lambda n: progress(None, n)) if progress else None, cutoffs)


@dataclass
class BacktestOptions:
    train_fraction: float = 0.7
    symptom: bool = False
    judge_kind: str = "local"
    keep: int = DEFAULT_KEEP
    batch_size: int = 20
    min_confidence: float | None = None  # neither set: the default target precision (see ``gate_threshold``)
    target_precision: float | None = None


def run_backtest(
    history: History,
    answer_fn: AnswerFn,
    judge_factory: Callable[[RankerModel | None], Judge],
    options: BacktestOptions,
    embeddings: ChangeEmbeddings | None,
    model: RankerModel | None = None,
    progress: Progress | None = None,
) -> dict[str, object]:
    """Per repository: split its cases by time and replay the later ones. Unless ``model``
    is given, one ranker learns from the earlier cases of every repository (the signals
    mean the same everywhere), while each repository's component map learns only from
    its commits landed before its own test period."""
    splits = split_repositories(history, options.train_fraction)
    if model is None:
        model = train_on_earlier(history, splits, embeddings, options.keep, progress)
    threshold, threshold_from = gate_threshold(model, options.min_confidence, options.target_precision)
    outcomes: list[CaseOutcome] = []
    per_repo: dict[str, object] = {}
    for repo, (_train, test) in splits.items():
        if not test:
            continue
        resources = RcaResources(
            model=model,
            embeddings=embeddings,
            keep=options.keep,
            batch_size=options.batch_size,
            min_confidence=0.0,
        )
        judge = judge_factory(model)
        if progress:
            progress(f"replaying {len(test)} later {repo} cases", len(test))
        repo_outcomes = []
        for case in test:
            repo_outcomes.append(replay_case(case, history, resources, answer_fn, judge, options.symptom))
            if progress:
                progress(None, 1)
        outcomes.extend(repo_outcomes)
        per_repo[repo] = summarise(repo_outcomes, threshold)
    summary = summarise(outcomes, threshold)
    summary["per_repository"] = per_repo
    summary["threshold"] = {"value": threshold, "from": threshold_from}
    summary["calibration"]["chosen"] = {  # type: ignore[index]
        "method": model.confidence.method,
        "leave_one_repository_out_ece": model.confidence.loro_ece,
    }
    summary["symptom_only"] = options.symptom
    summary["judge"] = options.judge_kind
    return summary

