"""How the live bot did, from confirmed causes only: precision by week and false confidence.

Votes are opinions; a confirmed cause (see :mod:`tools.feedback.confirmations`)
is the ground truth. For each incident culprit answered, its latest answer's
five suggestions either held a confirmed cause or not. Precision is the share
of answered incidents with a confirmed cause whose five held it; the
false-confidence rate is the share of answers given with confidence at least
the threshold, among those with a confirmed cause, whose five did not hold it:
the answers that misled a responder while sounding sure.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from knowledge.db import session_scope
from knowledge.incidents import Feedback, RootCause, Suggestion
from tools.feedback.confirmations import LABEL_SOURCES


@dataclass(frozen=True)
class WeekQuality:
    """One ISO week of answers, judged by the causes confirmed since."""

    week: str
    answered: int
    with_confirmed_cause: int
    cause_in_five: int
    confident: int
    false_confident: int
    up_votes: int
    down_votes: int

    @property
    def precision(self) -> float | None:
        return self.cause_in_five / self.with_confirmed_cause if self.with_confirmed_cause else None

    @property
    def false_confidence_rate(self) -> float | None:
        return self.false_confident / self.confident if self.confident else None

    def to_dict(self) -> dict[str, object]:
        return {
            "week": self.week,
            "answered": self.answered,
            "with_confirmed_cause": self.with_confirmed_cause,
            "cause_in_five": self.cause_in_five,
            "precision": self.precision,
            "confident": self.confident,
            "false_confident": self.false_confident,
            "false_confidence_rate": self.false_confidence_rate,
            "up_votes": self.up_votes,
            "down_votes": self.down_votes,
        }


@dataclass(frozen=True)
class _Answer:
    incident_id: str
    at: datetime
    changes: frozenset[str]
    confidence: float


def iso_week_of(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def quality_by_week(
    *, database_url: str, min_confidence: float, since: datetime | None = None, until: datetime | None = None
) -> list[WeekQuality]:
    """Per ISO week of the answer, precision and false confidence against confirmed causes.

    ``min_confidence`` is the threshold the bot answered with (``CULPRIT_MIN_CONFIDENCE``).
    """
    query = select(Suggestion.id, Suggestion.incident_id, Suggestion.change_id, Suggestion.rank,
                   Suggestion.confidence, Suggestion.created_at).order_by(Suggestion.id)
    if since is not None:
        query = query.where(Suggestion.created_at >= since)
    if until is not None:
        query = query.where(Suggestion.created_at < until)
    with session_scope(database_url) as session:
        rows = session.execute(query).all()
        incidents = {row.incident_id for row in rows}
        causes: dict[str, set[str]] = defaultdict(set)
        for incident_id, change_id in session.execute(
            select(RootCause.incident_id, RootCause.change_id).where(
                RootCause.incident_id.in_(incidents), RootCause.source.in_(LABEL_SOURCES)
            )
        ):
            causes[incident_id].add(change_id)
        votes = session.execute(
            select(Suggestion.incident_id, Feedback.vote).join(Feedback, Feedback.suggestion_id == Suggestion.id)
            .where(Suggestion.incident_id.in_(incidents))
        ).all()
    answers = _latest_answers(rows)
    weeks: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    week_of_incident = {answer.incident_id: iso_week_of(answer.at) for answer in answers}
    for answer in answers:
        bucket = weeks[week_of_incident[answer.incident_id]]
        bucket["answered"] += 1
        confirmed = causes.get(answer.incident_id)
        if not confirmed:
            continue
        hit = bool(confirmed & answer.changes)
        bucket["with_confirmed_cause"] += 1
        bucket["cause_in_five"] += hit
        if answer.confidence >= min_confidence:
            bucket["confident"] += 1
            bucket["false_confident"] += not hit
    for incident_id, vote in votes:
        bucket = weeks[week_of_incident[incident_id]]
        bucket["up_votes" if vote > 0 else "down_votes"] += 1
    return [
        WeekQuality(week=week, **{name: bucket.get(name, 0) for name in (
            "answered", "with_confirmed_cause", "cause_in_five", "confident", "false_confident", "up_votes", "down_votes"
        )})
        for week, bucket in sorted(weeks.items())
    ]


def _latest_answers(rows: list) -> list[_Answer]:  # type: ignore[type-arg]
    """Each incident's last answer: the run of suggestions, in id order, that starts at rank 1."""
    runs: dict[str, list] = {}  # type: ignore[type-arg]
    for row in rows:
        if row.rank == 1 or row.incident_id not in runs:
            runs[row.incident_id] = []
        runs[row.incident_id].append(row)
    return [
        _Answer(
            incident_id=incident_id,
            at=run[0].created_at,
            changes=frozenset(row.change_id for row in run if row.rank <= 5),
            confidence=round(sum(row.confidence for row in run), 4),
        )
        for incident_id, run in runs.items()
    ]
