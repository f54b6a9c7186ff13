"""Retriever: from every change in the window, keep the few hundred most worth judging.

Recall matters more than order here: the judge sees only what survives, so the
cut is generous and uses cheap signals (lexical, semantic, component, owner,
recency).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from knowledge.changes import ChangeRecord
from tools.rca.answers import CandidateChange, IncidentQuery, UnavailableEvidence
from tools.rca.signals.features import SignalContext, compute_signals, heuristic_score

DEFAULT_KEEP = 300


@dataclass
class Retrieved:
    """The kept candidates (with their signals), best first, how many there were, and
    the signals that failed (their evidence is missing from this answer)."""

    kept: list[CandidateChange]
    n_candidates: int
    unavailable: list[UnavailableEvidence] = field(default_factory=list)


def retrieve(
    query: IncidentQuery,
    candidates: Sequence[ChangeRecord],
    context: SignalContext,
    keep: int = DEFAULT_KEEP,
) -> Retrieved:
    """Score every candidate and keep the best ``keep`` by the heuristic blend."""
    signals = compute_signals(query, candidates, context)
    scored = [
        CandidateChange(change, features=features, retrieval_score=heuristic_score(features))
        for change, features in zip(candidates, signals.rows, strict=True)
    ]
    scored.sort(key=lambda candidate: candidate.retrieval_score, reverse=True)
    return Retrieved(kept=scored[:keep], n_candidates=len(candidates), unavailable=signals.unavailable)
