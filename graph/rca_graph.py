"""The RCA graph: load -> retrieve -> rank -> gate -> (explain -> answer | withhold) -> cite wiki -> store.

Every node is a plain function of the state that calls into ``tools``; the one
conditional edge is the confidence gate. Each node first checks the
investigation's deadline (``tools.rca.deadline``), as do the signals and each
election round, so a timed-out investigation stops at its next stage. ``run_rca`` answers from the store;
``replay_incident`` answers over candidates the caller already has (backtests).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from functools import lru_cache
from typing import Any, TypedDict

import numpy as np
import structlog
from langgraph.graph import END, START, StateGraph

from knowledge.changes import ChangeRecord
from knowledge.db import failure_fields
from knowledge.errors import CulpritError, failed_call
from tools.rca.answers import CandidateChange, Evidence, IncidentQuery, RcaAnswer, SourceFreshness, SuggestedChange
from tools.rca.confidence import Assessment, assess, query_term_count
from tools.rca.deadline import Deadline, check_deadline, current_deadline
from tools.rca.election import ElectionResult, elect
from tools.rca.explain import explain, family_contributions, why_first
from tools.rca.freshness import source_freshness
from tools.rca.judges.protocol import Judge
from tools.rca.judges.local import LocalJudge
from tools.rca.resources import RcaResources
from tools.rca.store import store_answer, window_changes
from tools.rca.retrieval import Retrieved, retrieve
from tools.rca.signals.features import SignalContext
from tools.rca.signals.similar_changes import Neighbourhood

log = structlog.get_logger(__name__)

_MAX_LAZY_EMBED = 2000


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
    assessment: Assessment
    suggestions: list[SuggestedChange]
    why_first: str
    answer: RcaAnswer
    notes: list[str]
    timings_ms: dict[str, float]
    freshness: list[SourceFreshness]
    deadline: Deadline | None


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
    candidates = window_changes(state["database_url"], query.started_at - window, query.started_at, query.repo)
    notes = list(state.get("notes", []))
    resources = state["resources"]
    embeddings = resources.embeddings
    if embeddings is not None and (resources.model is None or resources.model.uses_embeddings):
        missing = embeddings.missing(candidates)[:_MAX_LAZY_EMBED]
        if missing:
            embeddings.add(missing)
            notes.append(f"embedded {len(missing)} changes seen for the first time (kept for next time)")
    freshness = source_freshness(query, state["database_url"], resources.poll_seconds)
    return {
        "candidates": candidates,
        "notes": notes,
        "freshness": freshness,
        "timings_ms": _timed("load", state, started),
    }


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
    check_deadline(state.get("deadline"), "signals")
    retrieved = retrieve(query, state["candidates"], context, resources.keep)
    notes = list(state.get("notes", [])) + _unseen_repositories(resources, state["candidates"])
    return {
        "retrieved": retrieved,
        "similar_changes": similar,
        "notes": notes,
        "timings_ms": _timed("retrieve", state, started),
    }


def _unseen_repositories(resources: RcaResources, candidates: Sequence[ChangeRecord]) -> list[str]:
    """A note for each candidate repository the model never learned, whose maps come from others.

    A change event (deploy, flag flip) is filed under its source or kind, not a repository: no history of
    it could be trained on, so it is never one the model "never learned"."""
    model = resources.model
    if model is None or not model.repos or not model.component_maps:  # a portable model borrows no maps
        return []
    unseen = sorted({change.repo for change in candidates if change.kind == "commit"} - set(model.repos))
    return [
        f"the model never learned {repo}: its component map and similar changes come from "
        f"{', '.join(model.repos)}; run `culprit train` with {repo}'s history (cases and commits) to learn its own"
        for repo in unseen
    ]


def rank_changes(state: RcaState) -> dict[str, Any]:
    started = time.perf_counter()
    result = elect(
        state["query"], state["retrieved"].kept, state["judge"], state["resources"].batch_size,
        deadline=state.get("deadline"),
    )
    notes = list(state.get("notes", []))
    judge_name = getattr(state["judge"], "name", "")
    fallbacks = [name for name in result.judges_used if name != judge_name]
    if fallbacks:
        notes.append(f"some batches were ranked by {', '.join(fallbacks)} instead of {judge_name}")
    return {"election": result, "notes": notes, "timings_ms": _timed("rank", state, started)}


def gate(state: RcaState) -> dict[str, Any]:
    """A calibrated probability that the five hold the root cause, or a computed one labelled
    uncalibrated with the reason.

    The calibration was fit on the local ranker's scores, so when another judge
    (an LLM) picked the five, the local ranker scores them again for the gate."""
    model = state["resources"].model
    winners = state["election"].winners
    kept = state["retrieved"].kept
    if model is not None:
        if any(choice.judge != "local" for choice in winners):
            by_id = {change.change_id: change for change in kept}
            winners = LocalJudge(model).rank(
                state["query"], [by_id[choice.change_id] for choice in winners], len(winners)
            )
        kept_scores = model.score(kept)
    else:
        kept_scores = np.array([change.retrieval_score for change in kept])
    assessment = assess(
        model.confidence if model is not None else None, winners, state["retrieved"].n_candidates,
        kept_scores, query_term_count(kept),
    )
    return {"confidence": assessment.confidence, "assessment": assessment}


def is_confident(state: RcaState) -> str:
    """Answer when the confidence reaches the threshold; without a trained ranker there is
    nothing to measure it against, so the answer is given and says so."""
    if not state["election"].winners:
        return "withhold"
    if state["resources"].model is None:
        return "explain"
    return "explain" if state["confidence"] >= state["resources"].min_confidence else "withhold"


def _suggestions(state: RcaState) -> tuple[list[SuggestedChange], str]:
    """The finalists with their reasons (from the ranker's own contributions), each with its
    share of the overall confidence; and one line on why #1 beats #2."""
    resources = state["resources"]
    kept = state["retrieved"].kept
    by_id = {change.change_id: change for change in kept}
    parts = dict(zip(by_id, family_contributions(resources.model, kept), strict=True))
    winners = state["election"].winners
    landed = sorted(change.landed_time.timestamp() for change in state["candidates"])  # the timing sentences count these
    scores = np.array([choice.score for choice in winners], dtype=np.float64)
    shares = np.exp(scores - scores.max()) if len(scores) else scores
    shares = shares / shares.sum() if len(scores) else shares
    suggestions = []
    for rank, (choice, share) in enumerate(zip(winners, shares, strict=True), start=1):
        candidate = by_id[choice.change_id]
        suggestions.append(
            SuggestedChange(
                rank=rank,
                change=candidate.change,
                score=choice.score,
                confidence=round(float(state["confidence"] * share), 4),
                judge=choice.judge,
                evidence=_evidence(state, candidate, parts[choice.change_id], landed),
            )
        )
    line = ""
    if len(suggestions) > 1:
        first, second = suggestions[0].change_id, suggestions[1].change_id
        line = why_first(parts[first], parts[second], suggestions[0].evidence.reasons)
    return suggestions, line


def _evidence(
    state: RcaState, candidate: CandidateChange, contributions: dict[str, float], window_landed: Sequence[float]
) -> Evidence:
    """The change's reasons; if explaining fails, those that need no learned part (timing, size, risk)."""
    resources, query = state["resources"], state["query"]
    model = resources.model
    known = {"features": candidate.features, "contributions": contributions,
             "n_candidates": state["retrieved"].n_candidates, "window_landed": window_landed}
    try:
        return explain(
            query, candidate.change, resources.ownership, model.component_map(query.repo) if model else None,
            state.get("similar_changes"), past=model.past_incidents if model else None, **known,
        )
    except Exception as error:  # noqa: BLE001 - a suggestion without its reasons beats no answer
        log.warning("explaining failed", incident_id=query.incident_id, change=candidate.change_id, **failure_fields(error))
        return explain(query, candidate.change, **known)


def explain_suggestions(state: RcaState) -> dict[str, Any]:
    started = time.perf_counter()
    suggestions, line = _suggestions(state)
    return {"suggestions": suggestions, "why_first": line, "timings_ms": _timed("explain", state, started)}


def _answer(state: RcaState, confident: bool, suggestions: list[SuggestedChange], signals: list[str]) -> RcaAnswer:
    assessment = state.get("assessment") or Assessment(0.0, True)
    return RcaAnswer(
        incident=state["query"],
        confident=confident,
        confidence=round(float(state.get("confidence", 0.0)), 4),
        suggestions=suggestions,
        strongest_signals=signals,
        notes=list(state["resources"].notes) + list(state.get("notes", [])) + _stale_notes(state, confident),
        unavailable_evidence=list(state["retrieved"].unavailable),
        n_candidates=state["retrieved"].n_candidates,
        n_retrieved=len(state["retrieved"].kept),
        timings_ms=dict(state.get("timings_ms", {})),
        freshness=list(state.get("freshness", [])),
        model=_judged_by(state["resources"]),
        why_first=state.get("why_first", "") if confident else "",
        calibrated=assessment.calibrated,
        uncalibrated_because=assessment.uncalibrated_because,
        expected_hit_rate=assessment.hit_rate if confident else "",
    )


def _stale_notes(state: RcaState, confident: bool) -> list[str]:
    """A confident answer still says which sources end before the incident (a withheld one leads with them)."""
    if not confident:
        return []
    return [f"{source.source} may be stale ({source.summary}): {source.fix}" for source in state.get("freshness", []) if source.stale]


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
            for suggestion in _suggestions(state)[0][:3]
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
        log.warning("wiki_unavailable", **failed_call(error))
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


Node = Callable[[RcaState], dict[str, Any]]


def _checked(stage: str, node: Node) -> Node:
    """``node``, started only while the investigation's deadline has not passed."""

    def run(state: RcaState) -> dict[str, Any]:
        check_deadline(state.get("deadline"), stage)
        return node(state)

    run.__name__ = node.__name__
    return run


@lru_cache(maxsize=1)
def rca_graph() -> Any:
    """The compiled graph, built once per process."""
    graph = StateGraph(RcaState)
    graph.add_node("load", _checked("load", load_candidates))
    graph.add_node("retrieve", _checked("retrieve", retrieve_changes))
    graph.add_node("rank", _checked("election", rank_changes))
    graph.add_node("gate", _checked("gate", gate))
    graph.add_node("explain", _checked("explain", explain_suggestions))
    graph.add_node("answer", answer)
    graph.add_node("withhold", _checked("withhold", withhold))
    graph.add_node("wiki", _checked("wiki", cite_wiki))
    graph.add_node("store", _checked("store", persist_answer))
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
    deadline: Deadline | None = None,
) -> RcaAnswer:
    """Answer an incident from the changes in the store; with ``persist`` keep the answer
    (each suggestion gets its ``suggestion_id`` for feedback).

    Raises ``DeadlinePassed`` at the first stage begun after ``deadline`` (by
    default the caller's current one) has passed."""
    if query.started_at.tzinfo is None:
        raise CulpritError("the incident start time needs a time zone (e.g. 2024-05-01T12:00:00Z)")
    state: RcaState = {
        "query": query,
        "resources": resources,
        "judge": judge or LocalJudge(resources.model),
        "database_url": database_url,
        "persist": persist,
        "cite_wiki": True,
        "deadline": deadline or current_deadline(),
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
