"""The RCA graph: load -> retrieve -> rank -> gate -> (explain -> answer | withhold) -> cite wiki -> store.

Every node is a plain function of the state that calls into ``tools``; the one
conditional edge is the confidence gate. ``run_rca`` answers from the store;
``replay_incident`` answers over candidates the caller already has (backtests).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from functools import lru_cache
from typing import Any, TypedDict

import numpy as np
import structlog
from langgraph.graph import END, START, StateGraph

from knowledge.changes import ChangeRecord, changes_landed_between
from knowledge.db import session_scope
from knowledge.errors import CulpritError
from tools.rca.answers import Evidence, IncidentQuery, RcaAnswer, SuggestedChange
from tools.rca.election import ElectionResult, elect
from tools.rca.explain import explain
from tools.rca.judges.protocol import Judge
from tools.rca.judges.local import LocalJudge
from tools.rca.resources import RcaResources
from tools.rca.store import store_answer
from tools.rca.retrieval import Retrieved, retrieve
from tools.rca.signals.component_map import ComponentMap
from tools.rca.signals.features import SignalContext
from tools.rca.signals.ownership import OwnershipContext
from tools.rca.signals.similar_changes import Neighbourhood

log = structlog.get_logger(__name__)

_MAX_LAZY_EMBED = 2000
_UNCALIBRATED_CONFIDENCE = 0.5


class RcaState(TypedDict, total=False):
    query: IncidentQuery
    resources: RcaResources
    judge: Judge
    database_url: str
    persist: bool
    cite_wiki: bool
    candidates: list[ChangeRecord]
    retrieved: Retrieved
    similar_changes: Neighbourhood | None
    election: ElectionResult
    confidence: float
    suggestions: list[SuggestedChange]
    answer: RcaAnswer
    notes: list[str]
    timings_ms: dict[str, float]


def _timed(name: str, state: RcaState, started: float) -> dict[str, float]:
    timings = dict(state.get("timings_ms", {}))
    timings[name] = round((time.perf_counter() - started) * 1000, 2)
    return timings


def load_candidates(state: RcaState) -> dict[str, Any]:
    """Changes landed in the window before the incident start, from the store."""
    if "candidates" in state:
        return {}
    started = time.perf_counter()
    query = state["query"]
    window = timedelta(days=state["resources"].window_days)
    with session_scope(state["database_url"]) as session:
        changes = changes_landed_between(session, query.started_at - window, query.started_at, query.repo)
        candidates = [change.record() for change in changes]
    notes = list(state.get("notes", []))
    resources = state["resources"]
    embeddings = resources.embeddings
    if embeddings is not None and (resources.model is None or resources.model.uses_embeddings):
        missing = embeddings.missing(candidates)[:_MAX_LAZY_EMBED]
        if missing:
            embeddings.add(missing)
            notes.append(f"embedded {len(missing)} changes seen for the first time (kept for next time)")
    return {"candidates": candidates, "notes": notes, "timings_ms": _timed("load", state, started)}


def retrieve_changes(state: RcaState) -> dict[str, Any]:
    started = time.perf_counter()
    resources = state["resources"]
    query = state["query"]
    vector = None
    semantic = resources.embeddings is not None and (resources.model is None or resources.model.uses_embeddings)
    if semantic:
        from knowledge.embeddings import embed

        vector = embed([query.full_text])[0]
    index = resources.model.similar_changes_in(query.repo) if resources.model else None
    similar = index.around(query.full_text, state["candidates"]) if index is not None else None
    context = SignalContext(
        component_map=resources.model.component_map(query.repo) if resources.model else None,
        embeddings=resources.embeddings if semantic else None,
        ownership=resources.ownership,
        incident_vector=vector,
        past_incidents=resources.model.past_incidents if resources.model else None,
        similar_changes=similar,
    )
    retrieved = retrieve(query, state["candidates"], context, resources.keep)
    notes = list(state.get("notes", [])) + _unseen_repositories(resources, state["candidates"])
    return {
        "retrieved": retrieved,
        "similar_changes": similar,
        "notes": notes,
        "timings_ms": _timed("retrieve", state, started),
    }


def _unseen_repositories(resources: RcaResources, candidates: Sequence[ChangeRecord]) -> list[str]:
    """A note for each candidate repository the model never learned, whose maps come from others."""
    model = resources.model
    if model is None or not model.repos or not model.component_maps:  # a portable model borrows no maps
        return []
    unseen = sorted({change.repo for change in candidates} - set(model.repos))
    return [
        f"the model never learned {repo}: its component map and similar changes come from "
        f"{', '.join(model.repos)}; run `culprit train` with {repo}'s history (cases and commits) to learn its own"
        for repo in unseen
    ]


def rank_changes(state: RcaState) -> dict[str, Any]:
    started = time.perf_counter()
    result = elect(state["query"], state["retrieved"].kept, state["judge"], state["resources"].batch_size)
    notes = list(state.get("notes", []))
    judge_name = getattr(state["judge"], "name", "")
    fallbacks = [name for name in result.judges_used if name != judge_name]
    if fallbacks:
        notes.append(f"some batches were ranked by {', '.join(fallbacks)} instead of {judge_name}")
    return {"election": result, "notes": notes, "timings_ms": _timed("rank", state, started)}


def gate(state: RcaState) -> dict[str, Any]:
    """A calibrated probability that the five hold the root cause.

    The calibration was fit on the local ranker's scores, so when another judge
    (an LLM) picked the five, the local ranker scores them again for the gate."""
    model = state["resources"].model
    winners = state["election"].winners
    n_candidates = state["retrieved"].n_candidates
    if model is not None:
        if any(choice.judge != "local" for choice in winners):
            by_id = {change.change_id: change for change in state["retrieved"].kept}
            winners = LocalJudge(model).rank(
                state["query"], [by_id[choice.change_id] for choice in winners], len(winners)
            )
        confidence = model.confidence.probability(winners, n_candidates)
    else:
        confidence = _UNCALIBRATED_CONFIDENCE if winners else 0.0
    return {"confidence": confidence}


def is_confident(state: RcaState) -> str:
    confident = bool(state["election"].winners) and state["confidence"] >= state["resources"].min_confidence
    return "explain" if confident else "withhold"


def _suggestions(state: RcaState) -> list[SuggestedChange]:
    """The finalists with evidence; each carries its share of the overall confidence."""
    resources = state["resources"]
    query = state["query"]
    by_id = {change.change_id: change for change in state["retrieved"].kept}
    winners = state["election"].winners
    scores = np.array([choice.score for choice in winners], dtype=np.float64)
    shares = np.exp(scores - scores.max()) if len(scores) else scores
    shares = shares / shares.sum() if len(scores) else shares
    component_map = resources.model.component_map(query.repo) if resources.model else None
    similar = state.get("similar_changes")
    suggestions = []
    for rank, (choice, share) in enumerate(zip(winners, shares, strict=True), start=1):
        change = by_id[choice.change_id].change
        suggestions.append(
            SuggestedChange(
                rank=rank,
                change=change,
                score=choice.score,
                confidence=round(float(state["confidence"] * share), 4),
                judge=choice.judge,
                evidence=_evidence(query, change, resources, component_map, similar),
            )
        )
    return suggestions


def _evidence(
    query: IncidentQuery,
    change: ChangeRecord,
    resources: RcaResources,
    component_map: ComponentMap | None,
    similar: Neighbourhood | None,
) -> Evidence:
    """The change's evidence; if explaining fails, the facts that need no model (timing, size, risk)."""
    try:
        return explain(query, change, resources.ownership, component_map, similar)
    except Exception as error:  # noqa: BLE001 - a suggestion without its reasons beats no answer
        log.warning("explaining failed", incident_id=query.incident_id, change=change.id, error=repr(error))
        return explain(query, change, OwnershipContext(), None, None)


def explain_suggestions(state: RcaState) -> dict[str, Any]:
    started = time.perf_counter()
    return {"suggestions": _suggestions(state), "timings_ms": _timed("explain", state, started)}


def _answer(state: RcaState, confident: bool, suggestions: list[SuggestedChange], signals: list[str]) -> RcaAnswer:
    return RcaAnswer(
        incident=state["query"],
        confident=confident,
        confidence=round(float(state.get("confidence", 0.0)), 4),
        suggestions=suggestions,
        strongest_signals=signals,
        notes=list(state["resources"].notes) + list(state.get("notes", [])),
        unavailable_evidence=list(state["retrieved"].unavailable),
        n_candidates=state["retrieved"].n_candidates,
        n_retrieved=len(state["retrieved"].kept),
        timings_ms=dict(state.get("timings_ms", {})),
        model=_judged_by(state["resources"]),
    )


def _judged_by(resources: RcaResources) -> str:
    return resources.model.description if resources.model is not None else "the built-in heuristic blend"


def answer(state: RcaState) -> dict[str, Any]:
    return {"answer": _answer(state, True, state["suggestions"], [])}


def withhold(state: RcaState) -> dict[str, Any]:
    """Not confident: describe the strongest leads in words instead of ranking them."""
    if not state["retrieved"].n_candidates:
        signals = ["no changes landed in the window before the incident start"]
    else:
        signals = [
            f"{suggestion.change_id[:10]} \"{suggestion.change.title}\": " + " ".join(suggestion.evidence.sentences[:2])
            for suggestion in _suggestions(state)[:3]
        ]
    return {"answer": _answer(state, False, [], signals)}


def cite_wiki(state: RcaState) -> dict[str, Any]:
    """Runbooks and postmortems for the incident; a suggestion cites those of the services it touches.

    The wiki is a help, not a dependency: if it cannot be searched the answer says so and goes on."""
    open_wiki = state["resources"].wiki
    if not state.get("cite_wiki") or open_wiki is None:
        return {}
    started = time.perf_counter()
    result = state["answer"]
    try:
        from tools.wiki.search import wiki_for_incident

        result.wiki = wiki_for_incident(state["query"], open_wiki())
    except Exception as error:  # noqa: BLE001 - any wiki failure must leave the RCA answer intact
        log.warning("wiki_unavailable", error=str(error))
        result.notes.append(f"the wiki could not be searched ({type(error).__name__})")
    for suggestion in result.suggestions:
        services = suggestion.evidence.services
        suggestion.evidence.wiki_pages = [
            hit.page for hit in result.wiki if any(service in hit.page for service in services)
        ]
    result.timings_ms["wiki"] = round((time.perf_counter() - started) * 1000, 2)
    return {"answer": result}


def persist_answer(state: RcaState) -> dict[str, Any]:
    if not state.get("persist"):
        return {}
    started = time.perf_counter()
    result = state["answer"]
    incident_id = store_answer(result, state["database_url"])
    result.incident = replace(result.incident, incident_id=incident_id)
    result.timings_ms["store"] = round((time.perf_counter() - started) * 1000, 2)
    return {"answer": result}


@lru_cache(maxsize=1)
def rca_graph() -> Any:
    """The compiled graph, built once per process."""
    graph = StateGraph(RcaState)
    graph.add_node("load", load_candidates)
    graph.add_node("retrieve", retrieve_changes)
    graph.add_node("rank", rank_changes)
    graph.add_node("gate", gate)
    graph.add_node("explain", explain_suggestions)
    graph.add_node("answer", answer)
    graph.add_node("withhold", withhold)
    graph.add_node("wiki", cite_wiki)
    graph.add_node("store", persist_answer)
    graph.add_edge(START, "load")
    graph.add_edge("load", "retrieve")
    graph.add_edge("retrieve", "rank")
    graph.add_edge("rank", "gate")
    graph.add_conditional_edges("gate", is_confident, {"explain": "explain", "withhold": "withhold"})
    graph.add_edge("explain", "answer")
    graph.add_edge("answer", "wiki")
    graph.add_edge("withhold", "wiki")
    graph.add_edge("wiki", "store")
    graph.add_edge("store", END)
    return graph.compile()


def _invoke(state: RcaState) -> RcaState:
    started = time.perf_counter()
    final: RcaState = rca_graph().invoke(state)
    final["answer"].timings_ms["total"] = round((time.perf_counter() - started) * 1000, 2)
    return final


def run_rca(
    query: IncidentQuery,
    *,
    database_url: str,
    resources: RcaResources,
    persist: bool = True,
    judge: Judge | None = None,
) -> RcaAnswer:
    """Answer an incident from the changes in the store; with ``persist`` keep the answer
    (each suggestion gets its ``suggestion_id`` for feedback)."""
    if query.started_at.tzinfo is None:
        raise CulpritError("the incident start time needs a time zone (e.g. 2024-05-01T12:00:00Z)")
    state: RcaState = {
        "query": query,
        "resources": resources,
        "judge": judge or LocalJudge(resources.model),
        "database_url": database_url,
        "persist": persist,
        "cite_wiki": True,
    }
    return _invoke(state)["answer"]


def replay_incident(
    query: IncidentQuery,
    candidates: Sequence[ChangeRecord],
    resources: RcaResources,
    judge: Judge | None = None,
) -> tuple[RcaAnswer, list[str]]:
    """The same graph over candidates the caller already has (a backtest); nothing is stored.
    Also returns the ids the retriever kept, to measure its recall."""
    state: RcaState = {
        "query": query,
        "resources": resources,
        "judge": judge or LocalJudge(resources.model),
        "candidates": list(candidates),
        "persist": False,
    }
    final = _invoke(state)
    return final["answer"], [change.change_id for change in final["retrieved"].kept]
