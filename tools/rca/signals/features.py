"""The retriever's signals for every candidate change of one incident.

Each signal is a number a learned ranker can weigh; many are also expressed
relative to the other candidates of the same incident (rank, share of the
best), because what matters is how a change compares with its neighbours in
the window, not the raw value.

The optional signals (component map, similar changes, embeddings, past
incidents, ownership) each run guarded: one that raises on something it has
never seen is logged with the incident id, contributes its neutral value
(zero, as for a model without that part) and is named in the answer, so one
signal never fails an investigation.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import structlog

from knowledge.changes import ChangeRecord
from knowledge.db import failure_fields, failure_reason
from knowledge.ingest.patch_names import code_like
from tools.rca.answers import IncidentQuery, UnavailableEvidence
from tools.rca.embeddings import ChangeEmbeddings
from tools.rca.signals.component_map import ComponentMap, change_units, commit_words
from tools.rca.signals.ownership import OwnershipContext
from tools.rca.signals.past_incidents import PastIncidents, past_incident_signals
from tools.rca.signals.risk import file_names, only_docs, only_tests, risk_labels, touches_code
from tools.rca.signals.similar_changes import Neighbourhood
from tools.rca.signals.terms import identifiers, path_tokens, title_subsystem, tokens

FEATURE_NAMES: tuple[str, ...] = (
    "bm25",
    "bm25_share",
    "bm25_rank",
    "title_bm25_share",
    "title_overlap",
    "path_overlap",
    "identifier_hits",
    "function_mentions",
    "file_mentions",
    "subsystem_match",
    "component",
    "component_share",
    "component_rank",
    "similar_changes",
    "similar_changes_share",
    "similar_changes_votes",
    "similar_changes_votes_share",
    "similar_changes_rank",
    "similar_functions",
    "embedding",
    "embedding_gap",
    "embedding_rank",
    "hours_before",
    "recency_rank",
    "log_lines",
    "log_files",
    "risk_config",
    "risk_build",
    "tests_only",
    "docs_only",
    "touches_code",
    "fix_title",
    "owner_match",
    "service_distance",
    "similar_incidents",
    "similar_incidents_share",
    "place_broke_before",
    "log_candidates",
    "query_terms",
)

log = structlog.get_logger(__name__)
T = TypeVar("T")

_MAX_PATHS = 60
_BODY_CHARS = 3000
_K1, _B = 1.2, 0.75
_FIX = re.compile(r"\b(fix|fixes|fixed|revert|bug)\b", re.IGNORECASE)


@dataclass
class SignalContext:
    """What the signals may consult besides the incident and the candidates."""

    component_map: ComponentMap | None = None
    embeddings: ChangeEmbeddings | None = None
    ownership: OwnershipContext = field(default_factory=OwnershipContext)
    incident_vector: np.ndarray | None = None
    past_incidents: PastIncidents | None = None
    similar_changes: Neighbourhood | None = None


@dataclass
class Signals:
    """One feature dict per candidate (in the order given) and the signals that failed."""

    rows: list[dict[str, float]]
    unavailable: list[UnavailableEvidence] = field(default_factory=list)


def _guarded(
    signal: str, compute: Callable[[], T], neutral: T, query: IncidentQuery, failures: list[UnavailableEvidence]
) -> T:
    """``compute()``, or ``neutral`` (what a model without this part sees) when it raises."""
    try:
        return compute()
    except Exception as error:  # noqa: BLE001 - any bug in one signal must not fail the investigation
        log.warning("signal failed", signal=signal, incident_id=query.incident_id, **failure_fields(error))
        failures.append(UnavailableEvidence(signal, failure_reason(error)))
        return neutral


@dataclass
class _ChangeTerms:
    names: tuple[tuple[str, ...], tuple[str, ...]]
    all_terms: Counter[str]
    length: int
    title_terms: set[str]
    path_terms: set[str]
    haystack: str
    functions: frozenset[str]
    files: set[str]
    subsystem: set[str]
    known_by: set[str]
    static: dict[str, float]


_terms_cache: dict[str, _ChangeTerms] = {}
_TERMS_CACHE_LIMIT = 100_000


def change_terms(change: ChangeRecord) -> _ChangeTerms:
    """Tokenised title, body and paths of a change, and the code names its patch holds (functions
    touched, identifiers added or removed), cached by id: a change never changes, except that
    ``culprit ingest names`` may read the names of one stored before they were read, so a
    cached entry serves only a change with the same names.

    The names count whole (``curl_http_done``, not ``curl``, ``http``, ``done``),
    only code-looking ones (``connect`` or ``close`` would echo a report's plain
    words), and add matches, not length: a report without code names scores
    every change as if the patch had not been read."""
    cached = _terms_cache.get(change.id)
    if cached is not None and cached.names == (change.functions, change.identifiers):
        return cached
    paths = change.paths[:_MAX_PATHS]
    title_terms = tokens(change.title)
    path_terms = path_tokens(paths)
    body_terms = tokens(change.body[:_BODY_CHARS])
    text_terms = title_terms + body_terms + path_terms
    names = [name.lower() for name in dict.fromkeys((*change.functions, *change.identifiers)) if code_like(name)]
    all_terms = Counter(text_terms + names)
    terms = _ChangeTerms(
        names=(change.functions, change.identifiers),
        all_terms=all_terms,
        length=len(text_terms),
        title_terms=set(title_terms),
        path_terms=set(path_terms),
        haystack=f"{change.title}\n{change.body[:_BODY_CHARS]}\n{' '.join(paths)}\n{' '.join(names)}".lower(),
        functions=frozenset(name.lower() for name in change.functions if code_like(name)),
        files=file_names(paths),
        subsystem=set(tokens(title_subsystem(change.title))),
        known_by=commit_words(change.title, change.body),
        static=_static_signals(change),
    )
    if len(_terms_cache) >= _TERMS_CACHE_LIMIT:
        _terms_cache.clear()
    _terms_cache[change.id] = terms
    return terms


def _static_signals(change: ChangeRecord) -> dict[str, float]:
    """Signals of the change alone (size, risk, kind), the same for every incident."""
    paths = change.paths
    risks = risk_labels(paths)
    return {
        "log_lines": math.log1p(change.added + change.deleted),
        "log_files": math.log1p(len(paths)),
        "risk_config": float("config" in risks),
        "risk_build": float("build" in risks),
        "tests_only": float(only_tests(paths)),
        "docs_only": float(only_docs(paths)),
        "touches_code": float(touches_code(paths)),
        "fix_title": float(bool(_FIX.search(change.title))),
    }


def _bm25(query_terms: list[str], documents: list[_ChangeTerms]) -> tuple[np.ndarray, dict[str, float]]:
    """Okapi BM25 of the incident against each change; also each term's idf within the window."""
    n = len(documents)
    lengths = np.array([doc.length for doc in documents], dtype=np.float64)
    average = float(lengths.mean()) if n else 1.0
    scores = np.zeros(n)
    idf: dict[str, float] = {}
    for term in sorted(set(query_terms)):  # a fixed order: float sums must not follow the hash seed
        frequencies = np.array([doc.all_terms.get(term, 0) for doc in documents], dtype=np.float64)
        containing = int((frequencies > 0).sum())
        idf[term] = math.log(1 + (n - containing + 0.5) / (containing + 0.5))
        if containing:
            norm = frequencies + _K1 * (1 - _B + _B * lengths / max(average, 1.0))
            scores += idf[term] * frequencies * (_K1 + 1) / norm
    return scores, idf


def bm25_scores(query: IncidentQuery, candidates: Sequence[ChangeRecord]) -> np.ndarray:
    """BM25 of the incident text against each change's title, body and paths (the baseline ranker)."""
    return _bm25(tokens(query.full_text), [change_terms(change) for change in candidates])[0]


def _rank_share(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank as a fraction (0 = best) and value as a share of the best value."""
    n = len(values)
    if n == 0:
        return values, values
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(n) / max(n - 1, 1)
    best = values.max()
    share = values / best if best > 0 else np.zeros(n)
    return ranks, share


def _weighted_overlap(query: set[str], terms: set[str], idf: dict[str, float]) -> float:
    total = math.fsum(idf.get(term, 0.0) for term in query)
    if total <= 0:
        return 0.0
    return math.fsum(idf.get(term, 0.0) for term in query & terms) / total


def _query_words(query: IncidentQuery) -> tuple[list[str], set[str], set[str], str]:
    """The incident's tokens, their set, the identifiers it pasted, and its lowered text."""
    text = query.full_text
    query_terms = tokens(text)
    return query_terms, set(query_terms), identifiers(text), text.lower()


def prefilter_scores(
    query: IncidentQuery, candidates: Sequence[ChangeRecord], neighbourhood: Neighbourhood | None
) -> np.ndarray:
    """Cheap scores for cutting a huge window to a few hundred before the full signals: BM25,
    pasted identifiers, file names and title overlap (the lexical part of the heuristic blend),
    recency, and where earlier changes described like the incident landed.

    Built for 50,000 changes: one set intersection per change finds the query words it holds
    (tokenised changes are cached across incidents), and only those changes are scored further."""
    _terms, query_set, query_identifiers, lowered = _query_words(query)
    documents = [change_terms(change) for change in candidates]
    n = len(documents)
    shared = [query_set.intersection(doc.all_terms) for doc in documents]
    containing = Counter(term for words in shared for term in words)
    idf = {
        term: math.log(1 + (n - containing[term] + 0.5) / (containing[term] + 0.5)) for term in sorted(query_set)
    }
    lengths = np.fromiter((doc.length for doc in documents), dtype=np.float64, count=n)
    norms = _K1 * (1 - _B + _B * lengths / max(float(lengths.mean()), 1.0)) if n else lengths
    bm25 = np.zeros(n)
    title = np.zeros(n)
    idf_total = math.fsum(idf.values()) or 1.0
    # Words in more than a tenth of the window barely move BM25 (idf under log 10): a change
    # holding only those is left at zero, so a long full-text report does not score every change.
    telling = {term for term, count in containing.items() if count <= max(n // 10, 1)}
    for index, words in enumerate(shared):
        words = words & telling
        if words:
            counts = documents[index].all_terms
            bm25[index] = math.fsum(
                idf[term] * counts[term] * (_K1 + 1) / (counts[term] + norms[index]) for term in sorted(words)
            )
            in_title = words & documents[index].title_terms
            title[index] = math.fsum(idf[term] for term in sorted(in_title)) / idf_total if in_title else 0.0
    _rank, bm25_share = _rank_share(bm25)
    started = query.started_at.timestamp()
    recency_rank, _ = _rank_share(np.array([change.landed_time.timestamp() - started for change in candidates]))
    votes = np.zeros(n)
    if neighbourhood is not None and neighbourhood.shares:
        shares = neighbourhood.shares  # the share part of Neighbourhood.score, without its lifts
        votes = np.array(
            [max((shares.get(unit, 0.0) for unit in change_units(change.paths)), default=0.0) for change in candidates]
        )
    _votes_rank, votes_share = _rank_share(votes)
    named = 0.3 * np.array([sum(1 for name in doc.files if len(name) > 3 and name in lowered) for doc in documents])
    if query_identifiers:
        named += 0.4 * np.array(
            [min(sum(1 for name in query_identifiers if name in doc.haystack), 3) for doc in documents]
        )
    return bm25_share + named + 0.5 * title + 0.2 * (1.0 - recency_rank) + 0.5 * votes_share


def compute_signals(
    query: IncidentQuery, candidates: Sequence[ChangeRecord], context: SignalContext, n_window: int | None = None
) -> Signals:
    """The signals of every candidate, keyed by ``FEATURE_NAMES``, and any that failed.
    ``n_window``: how many changes the window held when ``candidates`` are the prefilter's cut."""
    n = len(candidates)
    if n == 0:
        return Signals([])
    failures: list[UnavailableEvidence] = []
    query_terms, query_set, query_identifiers, lowered = _query_words(query)
    documents = [change_terms(change) for change in candidates]

    bm25, idf = _bm25(query_terms, documents)
    bm25_rank, bm25_share = _rank_share(bm25)
    _title_rank, title_bm25_share = _rank_share(_bm25(tokens(query.title), documents)[0])

    zeros = np.zeros(n)
    component = zeros
    if context.component_map is not None:
        component = _guarded(
            "component map", lambda: _component(query_terms, candidates, documents, context.component_map),
            zeros, query, failures,
        )
    component_rank, component_share = _rank_share(component)

    similar_lift, similar_votes, similar_functions = zeros, zeros, zeros
    if context.similar_changes is not None:
        neighbourhood = context.similar_changes
        similar_lift, similar_votes, similar_functions = _guarded(
            "similar changes", lambda: np.array([neighbourhood.score(change) for change in candidates]).T,
            np.zeros((3, n)), query, failures,
        )
    _lift_rank, similar_lift_share = _rank_share(similar_lift)
    similar_votes_rank, similar_votes_share = _rank_share(similar_votes)

    embedding = zeros
    if context.embeddings is not None and context.incident_vector is not None:
        embedding = _guarded("embeddings", lambda: _embedding(candidates, context), zeros, query, failures)
    embedding_rank, _ = _rank_share(embedding)
    embedding_gap = embedding - embedding.max()

    similar, broke_before = zeros, zeros
    if context.past_incidents is not None:
        past = context.past_incidents
        similar, broke_before = _guarded(
            "past incidents", lambda: past_incident_signals(query, candidates, past, context.component_map),
            (zeros, zeros), query, failures,
        )
    _similar_rank, similar_share = _rank_share(similar)

    started = query.started_at.timestamp()
    hours = np.array([max(0.0, (started - change.landed_time.timestamp()) / 3600) for change in candidates])
    recency_rank, _ = _rank_share(-hours)

    distance, owner_match = np.full(n, 9.0), zeros
    if not context.ownership.empty and query.service:
        distance, owner_match = _guarded(
            "ownership and dependency path", lambda: _ownership(query.service or "", candidates, context.ownership),
            (distance, owner_match), query, failures,
        )

    rows: list[dict[str, float]] = []
    for index, terms in enumerate(documents):
        rows.append(
            {
                "bm25": float(bm25[index]),
                "bm25_share": float(bm25_share[index]),
                "bm25_rank": float(bm25_rank[index]),
                "title_bm25_share": float(title_bm25_share[index]),
                "title_overlap": _weighted_overlap(query_set, terms.title_terms, idf),
                "path_overlap": _weighted_overlap(query_set, terms.path_terms, idf),
                "identifier_hits": float(sum(1 for name in query_identifiers if name in terms.haystack)),
                "function_mentions": float(len(terms.functions & query_set)),
                "file_mentions": float(sum(1 for name in terms.files if len(name) > 3 and name in lowered)),
                "subsystem_match": float(bool(terms.subsystem) and terms.subsystem <= query_set),
                "component": float(component[index]),
                "component_share": float(component_share[index]),
                "component_rank": float(component_rank[index]),
                "similar_changes": float(similar_lift[index]),
                "similar_changes_share": float(similar_lift_share[index]),
                "similar_changes_votes": float(similar_votes[index]),
                "similar_changes_votes_share": float(similar_votes_share[index]),
                "similar_changes_rank": float(similar_votes_rank[index]),
                "similar_functions": float(similar_functions[index]),
                "embedding": float(embedding[index]),
                "embedding_gap": float(embedding_gap[index]),
                "embedding_rank": float(embedding_rank[index]),
                "hours_before": math.log1p(hours[index]),
                "recency_rank": float(recency_rank[index]),
                **terms.static,
                "owner_match": float(owner_match[index]),
                "service_distance": float(distance[index]),
                "similar_incidents": float(similar[index]),
                "similar_incidents_share": float(similar_share[index]),
                "place_broke_before": float(broke_before[index]),
                "log_candidates": math.log1p(n_window or n),
                "query_terms": math.log1p(len(query_set)),
            }
        )
    return Signals(rows, failures)


def _component(
    query_terms: list[str], candidates: Sequence[ChangeRecord], documents: list[_ChangeTerms], component_map: ComponentMap
) -> np.ndarray:
    """Component-map match of each candidate; a change the map learned from leaves itself out."""
    learned_until = component_map.learned_until
    matcher = component_map.for_incident(query_terms)
    return np.array(
        [
            matcher.match(change.paths, terms.known_by if change.landed_time.timestamp() < learned_until else None)[0]
            for change, terms in zip(candidates, documents, strict=True)
        ]
    )


def _embedding(candidates: Sequence[ChangeRecord], context: SignalContext) -> np.ndarray:
    """Cosine of each candidate's stored embedding with the incident's; 0 where none is stored."""
    vectors, known = context.embeddings.vectors([change.id for change in candidates])  # type: ignore[union-attr]
    return np.where(known, vectors @ context.incident_vector, 0.0)


def _ownership(
    service: str, candidates: Sequence[ChangeRecord], ownership: OwnershipContext
) -> tuple[np.ndarray, np.ndarray]:
    """Hops in the dependency graph from the impacted service (9 = unrelated), and owner match."""
    impacted_owner = ownership.service_owner.get(service, "")
    distance, owner_match = np.full(len(candidates), 9.0), np.zeros(len(candidates))
    for index, change in enumerate(candidates):
        # A change event (a deploy, a flag flip) names its service; a commit's come from its paths.
        route = ownership.dependency_path(service, [*change.services, *ownership.services_of(change.paths)])
        distance[index] = float(len(route) - 1) if route else 9.0
        owners = ownership.owners_of(change.paths) + [ownership.service_owner.get(name, "") for name in change.services]
        owner_match[index] = float(bool(impacted_owner) and impacted_owner in owners)
    return distance, owner_match


def heuristic_terms(features: dict[str, float]) -> dict[str, float]:
    """Each signal's part of the hand-weighted blend, by signal name: the blend's own reasons."""
    return {
        "bm25_share": 1.0 * features["bm25_share"],
        "component_share": 0.6 * features["component_share"],
        "embedding": 2.0 * max(0.0, features["embedding"]),
        "identifier_hits": 0.4 * min(features["identifier_hits"], 3.0),
        "function_mentions": 0.8 * min(features["function_mentions"], 3.0),  # a name pasted from a trace
        "file_mentions": 0.3 * features["file_mentions"],
        "title_overlap": 0.5 * features["title_overlap"],
        "subsystem_match": 0.3 * features["subsystem_match"],
        "owner_match": 0.3 * features["owner_match"],
        "recency_rank": 0.2 * (1.0 - features["recency_rank"]),
        "docs_only": -0.5 * features["docs_only"],
        "tests_only": -0.3 * features["tests_only"],
    }


def heuristic_score(features: dict[str, float]) -> float:
    """A hand-weighted blend used to keep candidates and, without a trained model, to rank them."""
    return sum(heuristic_terms(features).values())
