"""Retriever: from every change in the window, keep the few hundred most worth judging.

Recall matters more than order here: the judge sees only what survives, so the
cut is generous and uses cheap signals (lexical, semantic, component, owner,
recency).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from knowledge.changes import ChangeRecord
from tools.rca.answers import CandidateChange, IncidentQuery, UnavailableEvidence
from tools.rca.signals.features import SignalContext, compute_signals, heuristic_score, prefilter_scores

DEFAULT_KEEP = 300
# A window larger than this (a monorepo's fortnight) is first cut by cheap signals, so the
# expensive ones (component map, past incidents, ownership, embeddings) see a few hundred.
# Larger than every window of the shared history (at most 334), whose answers it leaves alone.
PREFILTER_KEEP = 800
PREFILTER_NEWEST = 100  # the newest changes always pass the cut, whatever their words


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
    """Score every candidate and keep the best ``keep`` by the heuristic blend (a huge window
    is first cut to ``PREFILTER_KEEP`` by :func:`prefilter`)."""
    pool = prefilter(query, candidates, context)
    signals = compute_signals(query, pool, context, n_window=len(candidates))
    scored = [
        CandidateChange(change, features=features, retrieval_score=heuristic_score(features))
        for change, features in zip(pool, signals.rows, strict=True)
    ]
    scored.sort(key=lambda candidate: candidate.retrieval_score, reverse=True)
    return Retrieved(kept=scored[:keep], n_candidates=len(candidates), unavailable=signals.unavailable)


def prefilter(query: IncidentQuery, candidates: Sequence[ChangeRecord], context: SignalContext) -> Sequence[ChangeRecord]:
    """The window itself when small; otherwise its newest changes and the best of the rest by cheap signals."""
    if len(candidates) <= PREFILTER_KEEP:
        return candidates
    newest = sorted(range(len(candidates)), key=lambda i: candidates[i].landed_time, reverse=True)[:PREFILTER_NEWEST]
    scores = prefilter_scores(query, candidates, context.similar_changes)
    scores[newest] = np.inf
    chosen = np.sort(np.argsort(-scores, kind="stable")[:PREFILTER_KEEP])
    return [candidates[index] for index in chosen]
