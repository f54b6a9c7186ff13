"""Why each suggestion ranked where it did, from the ranker's own features.

The ranker's score of a change is a sum of per-signal contributions (LightGBM's
``pred_contrib``, or the terms of the hand-weighted blend when no model is
trained). Signals are grouped into the families a responder reasons in, each
family's contribution is taken relative to the average candidate of the same
window (what moved the change up its window), and only families that raised
the change become reasons, strongest first, each said with the facts behind
it. A family whose facts cannot be stated is left out rather than guessed.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from knowledge.changes import ChangeRecord
from tools.rca.answers import CandidateChange, Evidence, IncidentQuery, Reason
from tools.rca.signals.component_map import ComponentMap, change_units
from tools.rca.signals.features import FEATURE_NAMES, change_terms, heuristic_terms
from tools.rca.signals.ownership import OwnershipContext
from tools.rca.signals.past_incidents import PastIncidents
from tools.rca.signals.risk import risk_labels, size_label
from tools.rca.signals.similar_changes import Neighbourhood
from tools.rca.signals.terms import identifiers, tokens

_MAX_ITEMS = 6
_NOISE_SHARE = 0.05  # a family under 5% of the change's strongest one is not a reason

FAMILIES: dict[str, tuple[str, ...]] = {
    "words": (
        "bm25", "bm25_share", "bm25_rank", "title_bm25_share", "title_overlap", "path_overlap", "identifier_hits",
        "function_mentions", "file_mentions", "subsystem_match", "embedding", "embedding_gap", "embedding_rank",
    ),
    "component map": ("component", "component_share", "component_rank"),
    "similar changes": (
        "similar_changes", "similar_changes_share", "similar_changes_votes", "similar_changes_votes_share",
        "similar_changes_rank", "similar_functions",
    ),
    "past incidents": ("similar_incidents", "similar_incidents_share", "place_broke_before"),
    "ownership and dependency path": ("owner_match", "service_distance"),
    "timing": ("hours_before", "recency_rank"),
    "size and risk": (
        "log_lines", "log_files", "risk_config", "risk_build", "tests_only", "docs_only", "touches_code", "fix_title",
    ),
}
# The same for every candidate of an incident: they shift all scores alike, so never a reason.
QUERY_SIGNALS: tuple[str, ...] = ("log_candidates", "query_terms")
FAMILY_OF: dict[str, str] = {name: family for family, names in FAMILIES.items() for name in names}


class Contributor(Protocol):
    """A ranker that splits its scores into per-signal parts (the trained local judge)."""

    feature_names: tuple[str, ...]

    def contributions(self, batch: Sequence[CandidateChange]) -> np.ndarray: ...


def family_contributions(model: Contributor | None, kept: Sequence[CandidateChange]) -> list[dict[str, float]]:
    """Per kept candidate, each family's contribution to its score minus the window's average.

    With a model, LightGBM's exact per-feature contributions; without one, the
    terms of the heuristic blend that ranked them. Either way the families sum
    to the change's score minus the window's mean score."""
    if not kept:
        return []
    if model is not None:
        names = model.feature_names
        parts = model.contributions(kept)
    else:
        names = FEATURE_NAMES
        parts = np.array([[heuristic_terms(c.features).get(name, 0.0) for name in names] for c in kept])
    columns = {family: [i for i, name in enumerate(names) if FAMILY_OF.get(name) == family] for family in FAMILIES}
    sums = np.column_stack([parts[:, index].sum(axis=1) if index else np.zeros(len(kept)) for index in columns.values()])
    centred = sums - sums.mean(axis=0)
    return [dict(zip(FAMILIES, (float(value) for value in row), strict=True)) for row in centred]


@dataclass
class Context:
    """What the facts of an explanation may consult (all optional)."""

    ownership: OwnershipContext
    component_map: ComponentMap | None = None
    neighbourhood: Neighbourhood | None = None
    past: PastIncidents | None = None
    n_candidates: int = 0
    window_landed: Sequence[float] = ()


def _matched_paths(query: IncidentQuery, change: ChangeRecord, places: list[str]) -> list[str]:
    """Touched paths the incident names outright, then those in components its words point to."""
    lowered = query.full_text.lower()
    named = [path for path in change.paths if path.rsplit("/", 1)[-1].lower() in lowered]
    linked = [path for path in change.paths if any(path.startswith(place) for place in places)]
    return list(dict.fromkeys(named + linked))[:_MAX_ITEMS]


def explain(
    query: IncidentQuery,
    change: ChangeRecord,
    ownership: OwnershipContext | None = None,
    component_map: ComponentMap | None = None,
    neighbourhood: Neighbourhood | None = None,
    *,
    features: dict[str, float] | None = None,
    contributions: dict[str, float] | None = None,
    past: PastIncidents | None = None,
    n_candidates: int = 0,
    window_landed: Sequence[float] = (),
) -> Evidence:
    """The facts behind one suggestion, and its reasons: the families in ``contributions``
    that raised it, strongest first, each in a sentence. Without ``contributions`` (the
    model's parts could not be read) every family with facts is said, in a fixed order.
    ``window_landed``: the landing times (POSIX seconds, sorted) of every change in the window,
    which the timing sentence counts from."""
    context = Context(ownership or OwnershipContext(), component_map, neighbourhood, past, n_candidates, window_landed)
    evidence, pairs = _facts(query, change, context)
    sentences = _family_sentences(query, change, evidence, pairs, context, features or {})
    if contributions is None:
        evidence.reasons = [Reason(family, 0.0, sentences[family]) for family in FAMILIES if family in sentences]
    else:
        strongest = max(contributions.values(), default=0.0)
        helped = sorted(
            (value, family) for family, value in contributions.items()
            if value > 0 and value >= _NOISE_SHARE * strongest and family in sentences
        )
        evidence.reasons = [Reason(family, round(value, 4), sentences[family]) for value, family in reversed(helped)]
    evidence.sentences = _event_sentences(change) + [reason.sentence for reason in evidence.reasons]
    return evidence


def _facts(query: IncidentQuery, change: ChangeRecord, context: Context) -> tuple[Evidence, list[tuple[str, str]]]:
    terms = change_terms(change)
    query_terms = set(tokens(query.full_text))
    matched_terms = sorted(query_terms & set(terms.all_terms), key=lambda term: (-len(term), term))
    matched_identifiers = sorted(name for name in identifiers(query.full_text) if name in terms.haystack)
    matched = list(dict.fromkeys(matched_identifiers + matched_terms))[: _MAX_ITEMS * 2]
    pairs: list[tuple[str, str]] = []
    if context.component_map is not None:
        learned_from = change.landed_time.timestamp() < context.component_map.learned_until
        own_words = terms.known_by if learned_from else None
        _score, pairs = context.component_map.for_incident(query_terms).match(change.paths, own_words, with_pairs=True)
    places = [place for _word, place in pairs[:_MAX_ITEMS]]
    shared = context.neighbourhood.strongest(change) if context.neighbourhood is not None else None
    if shared:
        places.append(shared[0])
    ownership = context.ownership
    owners = ownership.owners_of(change.paths)
    # A change event names its service; a commit's services come from the paths it touches.
    services = list(dict.fromkeys([*change.services, *ownership.services_of(change.paths)]))
    impacted_owner = ownership.service_owner.get(query.service or "", "")
    minutes = max(0.0, (query.started_at - change.landed_time).total_seconds() / 60)
    evidence = Evidence(
        owners=owners,
        owner_match=bool(impacted_owner) and impacted_owner in owners,
        services=services,
        dependency_path=ownership.dependency_path(query.service, services) if query.service else [],
        matched_terms=matched,
        matched_functions=sorted(name for name in change.functions if name.lower() in terms.functions & query_terms),
        matched_paths=_matched_paths(query, change, places),
        minutes_before_incident=round(minutes, 1),
        size=size_label(change.added, change.deleted, len(change.paths)),
        risk=risk_labels(change.paths) + ([_EVENT_RISK[change.kind]] if change.kind in _EVENT_RISK else []),
        carried=list(change.carries),
    )
    return evidence, pairs


_EVENT_RISK = {"deploy": "deploy", "flag": "feature-flag flip", "config": "config push", "infra": "infrastructure change"}


def _event_sentences(change: ChangeRecord) -> list[str]:
    """What a change event was, and for a deploy the commits it carried (a responder can look each up)."""
    if change.kind == "commit":
        return []
    where = f" to {change.environment}" if change.environment else ""
    version = f" {change.version}" if change.version else ""
    said = f"A {_EVENT_RISK.get(change.kind, change.kind)} of {', '.join(change.services) or change.repo}{version}{where}"
    if change.carries:
        shown = ", ".join(sha[:10] for sha in change.carries[:5])
        more = f" and {len(change.carries) - 5} more" if len(change.carries) > 5 else ""
        said += f", carrying {len(change.carries)} commits: {shown}{more}"
    return [said + "."]


def duration_words(minutes: float) -> str:
    if minutes < 120:
        return f"{minutes:.0f} minutes"
    if minutes < 72 * 60:
        return f"{minutes / 60:.1f} hours"
    return f"{minutes / 1440:.1f} days"


def _family_sentences(
    query: IncidentQuery,
    change: ChangeRecord,
    evidence: Evidence,
    pairs: list[tuple[str, str]],
    context: Context,
    features: dict[str, float],
) -> dict[str, str]:
    """A sentence per family that has facts to state; a family without facts gets none."""
    said: dict[str, str] = {}
    words = _words(evidence, features)
    if words:
        said["words"] = words
    if pairs:
        linked = ", ".join(f"'{word}' -> {place}" for word, place in pairs[:3])
        said["component map"] = f"Past changes that used the incident's words touched the places this one does: {linked}."
    if context.neighbourhood is not None:
        shared = context.neighbourhood.strongest(change)
        if shared:
            place, count, usual = shared
            said["similar changes"] = (
                f"{count} of the {context.neighbourhood.n_neighbours} earlier changes described most like this "
                f"incident touched {place} (usually {usual:.0%} of changes do), as this one does."
            )
    past = _past_incidents(query, change, context)
    if past:
        said["past incidents"] = past
    ownership = _ownership(query, evidence)
    if ownership:
        said["ownership and dependency path"] = ownership
    said["timing"] = _timing(evidence, change.landed_time.timestamp(), features, context)
    said["size and risk"] = _size_and_risk(evidence, features)
    return said


def _words(evidence: Evidence, features: dict[str, float]) -> str | None:
    if evidence.matched_functions:
        named = ", ".join(f"{name}()" for name in evidence.matched_functions[:3])
        return f"Changed {named}, which the incident names; shares these words with it: " + ", ".join(
            evidence.matched_terms[:8]
        ) + "."
    if evidence.matched_terms:
        return "Shares these words with the incident: " + ", ".join(evidence.matched_terms[:8]) + "."
    similarity = features.get("embedding", 0.0)
    if similarity > 0:
        return f"Its description reads like the incident (meaning similarity {similarity:.2f}) without sharing its words."
    return None


def _past_incidents(query: IncidentQuery, change: ChangeRecord, context: Context) -> str | None:
    """Earlier incidents worded like this one whose culprits touched this change's places, or
    how often its places caused incidents at all."""
    if context.past is None:
        return None
    units = change_units(tuple(change.paths))
    alike = [(incident, units & incident.culprit_units) for _w, incident in context.past.neighbours(query)]
    alike = [(incident, shared) for incident, shared in alike if shared]
    if alike:
        place = sorted(alike[0][1], key=lambda unit: (-len(unit), unit))[0]
        return (
            f"{len(alike)} earlier incident{'s' if len(alike) > 1 else ''} worded like this one "
            f"{'were' if len(alike) > 1 else 'was'} caused by changes to {place}, which this change touches too."
        )
    started = query.started_at.timestamp()
    broke = sorted(
        ((context.past.culprit_count(query.repo, unit, started), unit) for unit in units), key=lambda item: (-item[0], item[1])
    )
    if broke and broke[0][0] > 0:
        count, place = broke[0]
        return f"Changes to {place}, which this one touches, caused {count} earlier incident{'s' if count > 1 else ''}."
    return None


def _ownership(query: IncidentQuery, evidence: Evidence) -> str | None:
    said = []
    if evidence.owner_match:
        said.append(f"Owned by {', '.join(evidence.owners[:3])}, who own the impacted service.")
    if len(evidence.dependency_path) > 1:
        said.append(f"{query.service} depends on it through " + " -> ".join(evidence.dependency_path) + ".")
    elif evidence.dependency_path:
        said.append(f"Changes {evidence.dependency_path[0]}, the impacted service itself.")
    return " ".join(said) or None


def _timing(evidence: Evidence, landed: float, features: dict[str, float], context: Context) -> str:
    """When it landed and how many changes of the window landed before it: counted from the window's
    landing times when given (the recency signal ranks only the changes a window of over 800 was cut to,
    and ranks changes that landed together one after the other), else read from that signal."""
    said = f"Landed {duration_words(evidence.minutes_before_incident)} before the incident started"
    n_candidates, older = context.n_candidates, None
    if context.window_landed:
        n_candidates, older = len(context.window_landed), bisect.bisect_left(context.window_landed, landed)
    elif "recency_rank" in features and n_candidates > 1:
        older = round((1.0 - features["recency_rank"]) * (n_candidates - 1))
    if older is not None and n_candidates > 1:
        if older == n_candidates - 1:
            said += f", the newest of the {n_candidates} changes in the window"
        else:
            said += f", newer than {older} of the {n_candidates} changes in the window"
    return said + "."


def _size_and_risk(evidence: Evidence, features: dict[str, float]) -> str:
    kinds = []
    if evidence.risk:
        kinds.append("touches " + ", ".join(evidence.risk) + " files")
    if features.get("touches_code"):
        kinds.append("changes code")
    if features.get("fix_title"):
        kinds.append("is itself a fix")
    return f"Size: {evidence.size}" + (f"; it {' and '.join(kinds)}" if kinds else "") + "."


def why_first(first: dict[str, float], second: dict[str, float], first_reasons: Sequence[Reason]) -> str:
    """One line: the family that most separates #1 from #2 (their contributions' difference)."""
    gaps = {family: first.get(family, 0.0) - second.get(family, 0.0) for family in FAMILIES}
    family, gap = max(gaps.items(), key=lambda item: (item[1], item[0]))
    total = sum(value for value in gaps.values() if value > 0)
    if gap <= 0 or total <= 0:
        return "#1 and #2 scored alike; no single kind of evidence separates them."
    line = f"#1 ranks above #2 mostly on {family} ({gap / total:.0%} of what puts it ahead)"
    sentence = next((reason.sentence for reason in first_reasons if reason.family == family), "")
    return f"{line}: {sentence}" if sentence else line + "."
