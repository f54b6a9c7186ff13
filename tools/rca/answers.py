"""The domain objects every layer shares: an incident as asked, candidate changes, and the answer.

They are plain dataclasses so the Slack layer, the CLI, the backtests and the
judges can pass them around without a database session or a Slack object.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


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

    change_id: str
    title: str
    landed_time: datetime
    body: str = ""
    author: str = ""
    paths: tuple[str, ...] = ()
    added: int = 0
    deleted: int = 0
    features: dict[str, float] = field(default_factory=dict)
    retrieval_score: float = 0.0


@dataclass(frozen=True)
class JudgedChange:
    """One candidate a judge kept, best first; ``judge`` names who scored it (e.g. a fallback)."""

    change_id: str
    score: float
    judge: str


@dataclass
class Evidence:
    """Facts a responder can check without trusting the model."""

    owners: list[str] = field(default_factory=list)
    owner_match: bool = False
    services: list[str] = field(default_factory=list)
    dependency_path: list[str] = field(default_factory=list)
    matched_terms: list[str] = field(default_factory=list)
    matched_paths: list[str] = field(default_factory=list)
    minutes_before_incident: float = 0.0
    size: str = ""
    risk: list[str] = field(default_factory=list)
    wiki_pages: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)


@dataclass
class SuggestedChange:
    """One ranked suggestion with its evidence; ``suggestion_id`` is set once stored."""

    rank: int
    change_id: str
    title: str
    author: str
    landed_time: datetime
    score: float
    confidence: float
    judge: str
    evidence: Evidence
    suggestion_id: int | None = None


@dataclass
class WikiHit:
    """A wiki chunk that matched, cited next to the suggestions."""

    page: str
    heading: str
    snippet: str
    score: float
    title: str = ""


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
    n_candidates: int = 0
    n_retrieved: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
