"""Evidence behind each suggestion, in words a responder can check without trusting a model."""

from __future__ import annotations

from knowledge.changes import ChangeRecord
from tools.rca.answers import Evidence, IncidentQuery
from tools.rca.signals.component_map import ComponentMap
from tools.rca.signals.ownership import OwnershipContext
from tools.rca.signals.risk import risk_labels, size_label
from tools.rca.signals.features import change_terms
from tools.rca.signals.similar_changes import Neighbourhood
from tools.rca.signals.terms import identifiers, tokens

_MAX_ITEMS = 6


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
) -> Evidence:
    """Collect the facts behind one suggestion and say them in sentences. ``neighbourhood``:
    the earlier changes described most like the incident, whose places this change may share."""
    ownership = ownership or OwnershipContext()
    terms = change_terms(change)
    query_terms = set(tokens(query.full_text))
    matched_terms = sorted(query_terms & set(terms.all_terms), key=lambda term: (-len(term), term))
    matched_identifiers = sorted(name for name in identifiers(query.full_text) if name in terms.haystack)
    matched = list(dict.fromkeys(matched_identifiers + matched_terms))[: _MAX_ITEMS * 2]

    pairs: list[tuple[str, str]] = []
    if component_map is not None:
        learned_from = change.landed_time.timestamp() < component_map.learned_until
        own_words = terms.known_by if learned_from else None
        _score, pairs = component_map.for_incident(query_terms).match(change.paths, own_words, with_pairs=True)
    places = [place for _word, place in pairs[:_MAX_ITEMS]]
    shared = neighbourhood.strongest(change.paths) if neighbourhood is not None else None
    if shared:
        places.append(shared[0])

    owners = ownership.owners_of(change.paths)
    # A change event names its service; a commit's services come from the paths it touches.
    services = list(dict.fromkeys([*change.services, *ownership.services_of(change.paths)]))
    route = ownership.dependency_path(query.service, services) if query.service else []
    impacted_owner = ownership.service_owner.get(query.service or "", "")
    minutes = max(0.0, (query.started_at - change.landed_time).total_seconds() / 60)
    evidence = Evidence(
        owners=owners,
        owner_match=bool(impacted_owner) and impacted_owner in owners,
        services=services,
        dependency_path=route,
        matched_terms=matched,
        matched_paths=_matched_paths(query, change, places),
        minutes_before_incident=round(minutes, 1),
        size=size_label(change.added, change.deleted, len(change.paths)),
        risk=risk_labels(change.paths) + ([_EVENT_RISK[change.kind]] if change.kind in _EVENT_RISK else []),
        carried=list(change.carries),
    )
    like_this = None
    if shared and neighbourhood is not None:
        place, count, usual = shared
        like_this = (
            f"{count} of the {neighbourhood.n_neighbours} earlier changes described most like this incident "
            f"touched {place} (usually {usual:.0%} of changes do), as this one does."
        )
    evidence.sentences = _event_sentences(change) + _sentences(query, evidence, pairs, like_this)
    return evidence


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


def _duration(minutes: float) -> str:
    if minutes < 120:
        return f"{minutes:.0f} minutes"
    if minutes < 72 * 60:
        return f"{minutes / 60:.1f} hours"
    return f"{minutes / 1440:.1f} days"


def _sentences(
    query: IncidentQuery, evidence: Evidence, pairs: list[tuple[str, str]], like_this: str | None
) -> list[str]:
    said: list[str] = [f"Landed {_duration(evidence.minutes_before_incident)} before the incident started."]
    if evidence.matched_terms:
        said.append("Shares these words with the incident: " + ", ".join(evidence.matched_terms[:8]) + ".")
    if pairs:
        linked = ", ".join(f"'{word}' -> {place}" for word, place in pairs[:3])
        said.append(f"Past changes about these words touched the same code: {linked}.")
    if like_this:
        said.append(like_this)
    if evidence.matched_paths:
        said.append("Touches " + ", ".join(evidence.matched_paths[:4]) + ".")
    if evidence.owners:
        owned = ", ".join(evidence.owners[:4])
        match = " (the impacted service's owner)" if evidence.owner_match else ""
        said.append(f"Owned by {owned}{match}.")
    if len(evidence.dependency_path) > 1:
        said.append(f"{query.service} depends on it through " + " -> ".join(evidence.dependency_path) + ".")
    elif evidence.dependency_path:
        said.append(f"Changes {evidence.dependency_path[0]}, the impacted service itself.")
    said.append(f"Size: {evidence.size}.")
    if evidence.risk:
        said.append("Risky files touched: " + ", ".join(evidence.risk) + ".")
    return said
