"""The domain objects every layer shares: an incident as asked, candidate changes, and the answer.

They are plain dataclasses so the Slack layer, the CLI, the backtests and the
judges can pass them around without a database session or a Slack object.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from knowledge.changes import ChangeRecord
from knowledge.sources.freshness import KEPT_CURRENT


@dataclass(frozen=True)
class IncidentQuery:
    """What a responder knows at the start: a symptom, maybe a service, and when it began."""

    text: str
    started_at: datetime
    title: str = ""
    service: str | None = None
    repo: str | None = None
    incident_id: str | None = None

    @property
    def full_text(self) -> str:
        return f"{self.title}\n{self.text}".strip()


@dataclass(frozen=True)
class CandidateChange:
    """A change as a judge sees it, with the retriever's signals in ``features``."""

    change: ChangeRecord
    features: dict[str, float] = field(default_factory=dict)
    retrieval_score: float = 0.0

    @property
    def change_id(self) -> str:
        """The key judges, elections and stored suggestions name a change by."""
        return self.change.id


@dataclass(frozen=True)
class JudgedChange:
    """One candidate a judge kept, best first; ``judge`` names who scored it (e.g. a fallback)."""

    change_id: str
    score: float
    judge: str


@dataclass
class Reason:
    """One family of evidence that raised a change's score, with the facts behind it.

    ``contribution`` is how much the family's signals moved the ranker's score
    above the average candidate of the same window (LightGBM's per-feature
    contributions summed over the family), so reasons sort as the model weighed them."""

    family: str
    contribution: float
    sentence: str


@dataclass
class Evidence:
    """Facts a responder can check without trusting the model; ``reasons`` are those that
    helped the change's rank, strongest first (``sentences`` says them in the same order)."""

    owners: list[str] = field(default_factory=list)
    owner_match: bool = False
    services: list[str] = field(default_factory=list)
    dependency_path: list[str] = field(default_factory=list)
    matched_terms: list[str] = field(default_factory=list)
    matched_functions: list[str] = field(default_factory=list)  # functions it touched that the incident names
    matched_paths: list[str] = field(default_factory=list)
    minutes_before_incident: float = 0.0
    size: str = ""
    risk: list[str] = field(default_factory=list)
    wiki_pages: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    carried: list[str] = field(default_factory=list)  # a deploy's commits
    reasons: list[Reason] = field(default_factory=list)


@dataclass
class SuggestedChange:
    """One ranked suggestion with its evidence; ``suggestion_id`` is set once stored."""

    rank: int
    change: ChangeRecord
    score: float
    confidence: float
    judge: str
    evidence: Evidence
    suggestion_id: int | None = None

    @property
    def change_id(self) -> str:
        """The key judges, elections and stored suggestions name a change by."""
        return self.change.id

    def to_dict(self) -> dict[str, Any]:
        """The change shown by id, title, author and landing time, as ``rca --json`` always printed it."""
        change = self.change
        shown = {
            "rank": self.rank,
            "change_id": change.id,
            "title": change.title,
            "author": change.author,
            "landed_time": change.landed_time,
        }
        return shown | {name: value for name, value in asdict(self).items() if name != "change"}


@dataclass
class WikiHit:
    """A wiki chunk that matched, cited next to the suggestions."""

    page: str
    heading: str
    snippet: str
    score: float
    title: str = ""


@dataclass(frozen=True)
class UnavailableEvidence:
    """Evidence left out of one answer because its signal raised (the answer says so)."""

    signal: str
    reason: str

    def __str__(self) -> str:
        return f"{self.signal} ({self.reason})"


@dataclass(frozen=True)
class SourceFreshness:
    """How recent the answer's knowledge of one repository or change source is (``summary`` says it in words).

    ``stale``: last known complete more than a few poll intervals before the
    incident started, so a missing culprit may simply not be known yet; ``fix``
    says what to do.
    """

    source: str
    kind: str
    known_up_to: datetime | None
    summary: str
    stale: bool = False
    fix: str = ""

    @property
    def label(self) -> str:
        """The word shown before ``summary``: ``stale``, ``fresh``, or ``not judged`` for a source nobody
        keeps current (change events, history files), which can be neither."""
        if self.stale:
            return "stale"
        return "fresh" if self.kind in KEPT_CURRENT else "not judged"


@dataclass
class RcaAnswer:
    """The whole answer: suggestions when confident, otherwise the strongest signals."""

    incident: IncidentQuery
    confident: bool
    confidence: float
    suggestions: list[SuggestedChange]
    strongest_signals: list[str] = field(default_factory=list)
    wiki: list[WikiHit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unavailable_evidence: list[UnavailableEvidence] = field(default_factory=list)
    n_candidates: int = 0
    n_retrieved: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    model: str = ""  # which ranker judged (e.g. the shipped starter), for the responder to weigh the answer
    why_first: str = ""
    calibrated: bool = True
    uncalibrated_because: str = ""
    expected_hit_rate: str = ""
    freshness: list[SourceFreshness] = field(default_factory=list)

    @property
    def stale_sources(self) -> list[SourceFreshness]:
        """The sources too old for this incident: when withheld, the answer leads with them."""
        return [source for source in self.freshness if source.stale]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"suggestions": [suggestion.to_dict() for suggestion in self.suggestions]}
