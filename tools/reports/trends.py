"""What users are reporting, from the daily counts and the raw reports still retained.

These answer the agent's questions ("what are users complaining about in
payments?", "why did reports about login rise?") and feed the weekly digest.
Counts come from ``CategoryDaily`` (kept for years); examples and wording come
from ``BugReport`` (kept for the retention period only).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from langchain_core.tools import BaseTool, tool
from sklearn.feature_extraction.text import CountVectorizer
from sqlalchemy import func, select

from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.reports import Alert, BugReport, Category, CategoryDaily
from tools.reports.classifiers import OTHER
from tools.reports.labels import parse_why, why_lines
from tools.reports.topics import nearest_category
from tools.windows import MAX_WINDOW_DAYS, capped, with_note


@dataclass(frozen=True)
class CategoryCount:
    category: str
    count: int
    previous: float = 0.0

    @property
    def change(self) -> float:
        """Growth against the previous periods' average (1.0 = doubled)."""
        return (self.count - self.previous) / max(self.previous, 1.0)


@dataclass
class RiseExplanation:
    category: str
    days: int
    count: int
    previous: float
    spikes: list[dict[str, Any]] = field(default_factory=list)
    new_terms: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def daily_series(category: str | None, days: int, end: date, url: str) -> dict[str, list[tuple[date, int]]]:
    """Counts per day for each category (or one) over the last ``days`` days ending ``end``, zeros filled."""
    start = end - timedelta(days=days - 1)
    with session_scope(url) as session:
        query = select(CategoryDaily.category, CategoryDaily.day, CategoryDaily.count).where(
            CategoryDaily.day >= start, CategoryDaily.day <= end
        )
        if category:
            query = query.where(CategoryDaily.category == category)
        rows = session.execute(query).all()
    counts: dict[str, dict[date, int]] = {}
    for name, day, count in rows:
        counts.setdefault(name, {})[day] = count
    all_days = [start + timedelta(days=k) for k in range(days)]
    return {name: [(d, by_day.get(d, 0)) for d in all_days] for name, by_day in sorted(counts.items())}


def category_totals(start: date, end: date, url: str) -> Counter[str]:
    """Reports per category from ``start`` to ``end``; a category with none (its reports all relabeled away, which
    leaves days counting 0) is left out, or the digest listed it among the top ones with "0 reports"."""
    with session_scope(url) as session:
        rows = session.execute(
            select(CategoryDaily.category, func.sum(CategoryDaily.count))
            .where(CategoryDaily.day >= start, CategoryDaily.day <= end)
            .group_by(CategoryDaily.category)
            .having(func.sum(CategoryDaily.count) > 0)
        ).all()
    return Counter({name: int(total or 0) for name, total in rows})


def top_categories(end: date, days: int = 7, limit: int = 5, *, url: str) -> list[CategoryCount]:
    """The most reported categories in the period, with the previous four periods' average."""
    ranked = _with_previous(end, days, url)
    return sorted(ranked, key=lambda c: -c.count)[:limit]


def rising_categories(end: date, days: int = 7, limit: int = 5, *, url: str) -> list[CategoryCount]:
    """Categories that grew most against their previous four periods (at least 5 reports now)."""
    ranked = [c for c in _with_previous(end, days, url) if c.count >= 5 and c.count > c.previous]
    return sorted(ranked, key=lambda c: -c.change)[:limit]


def _with_previous(end: date, days: int, url: str) -> list[CategoryCount]:
    start = end - timedelta(days=days - 1)
    current = category_totals(start, end, url)
    before = category_totals(start - timedelta(days=4 * days), start - timedelta(days=1), url)
    return [CategoryCount(name, current[name], before[name] / 4) for name in current]


@dataclass(frozen=True)
class CategoryTrend:
    """One category over a window: now, the window before it, and the usual (previous four windows' average)."""

    category: str
    days: int
    end: date
    count: int
    before: int
    usual: float

    @property
    def direction(self) -> str:
        """``rose``, ``fell`` or ``held steady`` against the usual level (±10 %)."""
        if self.count > self.usual * 1.1:
            return "rose"
        if self.count < self.usual * 0.9:
            return "fell"
        return "held steady"


def category_trend(category: str, days: int = 7, end: date | None = None, *, url: str) -> CategoryTrend:
    """How one category's reports moved: the ``days`` ending ``end`` against the window before and the usual level."""
    end = end or datetime.now(UTC).date()
    start = end - timedelta(days=days - 1)
    count = category_totals(start, end, url)[category]
    before = category_totals(start - timedelta(days=days), start - timedelta(days=1), url)[category]
    usual = category_totals(start - timedelta(days=4 * days), start - timedelta(days=1), url)[category] / 4
    return CategoryTrend(category, days, end, count, before, usual)


def known_categories(url: str) -> list[str]:
    """Every category with counts or a definition, for matching a responder's topic."""
    with session_scope(url) as session:
        counted = set(session.scalars(select(CategoryDaily.category).distinct()))
        defined = set(session.scalars(select(Category.name)))
    return sorted(counted | defined)


def category_descriptions(url: str) -> dict[str, str]:
    """Each defined category's description and examples as one text, for matching topics to it."""
    with session_scope(url) as session:
        rows = session.execute(select(Category.name, Category.description, Category.examples)).all()
    return {name: " ".join([description or "", *(examples or [])[:20]]) for name, description, examples in rows}


def complaints_about(topic: str, days: int = 7, end: date | None = None, *, url: str) -> list[dict[str, Any]]:
    """Reports that mention ``topic`` or sit in a category named like it, grouped by category."""
    end = end or datetime.now(UTC).date()
    start = _midnight(end - timedelta(days=days - 1))
    words = topic.lower()  # matched as typed (autoescape): a "%" or "_" is no wildcard matching every report
    with session_scope(url) as session:
        rows = session.execute(
            select(BugReport.category, BugReport.text, BugReport.why)
            .where(BugReport.created_at >= start, BugReport.created_at < _midnight(end + timedelta(days=1)))
            .where(
                func.lower(BugReport.text).contains(words, autoescape=True)
                | func.lower(BugReport.category).contains(words, autoescape=True)
            )
            .order_by(BugReport.created_at.desc())
            .limit(2000)
        ).all()
    grouped: dict[str, list[tuple[str, str | None]]] = {}
    for category, text, why in rows:
        grouped.setdefault(category or "other", []).append((text, why))
    return [
        {
            "category": name,
            "count": len(items),
            "examples": [text for text, _ in items[:3]],
            "why": [parse_why(why) for _, why in items[:3]],
        }
        for name, items in sorted(grouped.items(), key=lambda item: -len(item[1]))
    ]


def explain_rise(category: str, days: int = 7, end: date | None = None, *, url: str) -> RiseExplanation:
    """Counts now vs before, the spike alerts live in the period (not those after it: ``end`` may be an incident's
    day in the past), and words that are new in recent reports."""
    end = end or datetime.now(UTC).date()
    start = end - timedelta(days=days - 1)
    count = category_totals(start, end, url)[category]
    previous = category_totals(start - timedelta(days=4 * days), start - timedelta(days=1), url)[category] / 4
    with session_scope(url) as session:
        spikes = session.scalars(
            select(Alert)
            .where(Alert.kind == "spike", Alert.key == category)
            .where(Alert.last_seen_on >= start, Alert.started_on <= end)  # live in the window, not after it
            .order_by(Alert.started_on)
        ).all()
        spike_rows = [
            {"started_on": a.started_on, "count": a.details.get("count"), "baseline": a.details.get("baseline")}
            for a in spikes
        ]
        recent = list(session.scalars(_texts(category, _midnight(start), _midnight(end + timedelta(days=1)))))
        earlier = list(session.scalars(_texts(category, _midnight(start - timedelta(days=4 * days)), _midnight(start))))
    return RiseExplanation(
        category=category,
        days=days,
        count=count,
        previous=previous,
        spikes=spike_rows,
        new_terms=distinctive_terms(recent, earlier),
        examples=recent[:3],
    )


def distinctive_terms(recent: list[str], earlier: list[str], limit: int = 8) -> list[str]:
    """Words and pairs far more frequent in recent reports than before (smoothed log ratio).

    With no earlier reports to compare against, every word is new: the most frequent ones.
    """
    if not recent:
        return []
    vectorizer = CountVectorizer(ngram_range=(1, 2), stop_words="english", min_df=2)
    try:
        matrix = vectorizer.fit_transform(recent + earlier)
    except ValueError:
        return []
    now_counts = np.asarray(matrix[: len(recent)].sum(axis=0)).ravel() + 1.0
    before_counts = np.asarray(matrix[len(recent):].sum(axis=0)).ravel() + 1.0
    ratio = np.log(now_counts / now_counts.sum()) - np.log(before_counts / before_counts.sum())
    ratio[now_counts < 3] = -np.inf
    terms = vectorizer.get_feature_names_out()
    if not earlier:
        return [str(terms[i]) for i in np.argsort(-now_counts, kind="stable")[:limit] if now_counts[i] >= 3]
    return [str(terms[i]) for i in np.argsort(-ratio)[:limit] if np.isfinite(ratio[i]) and ratio[i] > 0]


def _texts(category: str, start: datetime, end: datetime) -> Any:
    return (
        select(BugReport.text)
        .where(BugReport.category == category, BugReport.created_at >= start, BugReport.created_at < end)
        .order_by(BugReport.created_at.desc())
        .limit(2000)
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def trend_tools(url: str, end: date | None = None) -> list[BaseTool]:
    """The agent's tools over user reports, for windows ending ``end`` (the incident's day; default today)."""

    @tool
    def user_complaints(topic: str, days: int = 7) -> str:
        """What are users complaining about in a topic or category (e.g. "payments", "login") over the last days?"""
        days, note = capped(days, MAX_WINDOW_DAYS)
        groups = complaints_about(topic, days, end, url=url)
        if not groups:
            return with_note(note, f"No user reports mention '{topic}' in the last {days} days.")
        lines = [f"User reports about '{topic}' in the last {days} days:"]
        for group in groups[:5]:
            lines.append(f"- {group['category']}: {group['count']} reports, e.g. " + " | ".join(group["examples"]))
            for example, why in zip(group["examples"], group["why"], strict=True):
                if why:
                    lines.append(f"  why \u201c{example[:60]}\u201d is {group['category']}:")
                    lines += why_lines(why, indent="    ")
        return with_note(note, "\n".join(lines))

    @tool
    def report_rise(category: str, days: int = 7) -> str:
        """Why did user reports in a category rise? Counts vs before, spikes, new words, examples."""
        if unknown := unknown_category(category, url):
            return unknown
        days, note = capped(days, MAX_WINDOW_DAYS)
        rise = explain_rise(category, days, end, url=url)
        lines = [
            f"'{category}': {rise.count} reports in the last {days} days vs {rise.previous:.1f} per {days} days before."
        ]
        lines += [f"Spike on {s['started_on']}: {s['count']} reports vs usual {float(s['baseline'] or 0):.1f}." for s in rise.spikes]
        if rise.new_terms:
            lines.append("Words new in recent reports: " + ", ".join(rise.new_terms))
        lines += [f"Example: {example}" for example in rise.examples]
        return with_note(note, "\n".join(lines))

    @tool
    def complaint_trend(category: str, days: int = 7) -> str:
        """Did user reports in one category rise or fall? Counts over the last days against the usual level."""
        if unknown := unknown_category(category, url):
            return unknown
        days, note = capped(days, MAX_WINDOW_DAYS)
        return with_note(note, describe_trend(category_trend(category, days, end, url=url)))

    return [user_complaints, report_rise, complaint_trend]


def unknown_category(category: str, url: str) -> str:
    """What to tell a model that names a category the store does not know ("" when it knows it):
    counted as is, it would be answered as a category whose reports "held steady" at zero."""
    known = known_categories(url)
    if category in known:
        return ""
    nearest = nearest_category(category, known, category_descriptions(url))
    named = category[:80]
    if nearest:
        return f"No report category '{named}'; did you mean '{nearest}'?"
    return f"No report category '{named}'; the categories are: " + category_names(known)


def require_known_category(category: str, url: str, creating: str = "") -> None:
    """Refuse a category the store does not know, naming the nearest and the known ones: a typo used to
    start a category of its own (``relabel``) or read as a quiet category (``trends``). ``creating`` says
    how to make a new one on purpose, where that is allowed. ``other``, where unsure reports go, is always
    known, even before the first report went there."""
    if category == OTHER:
        return
    known = known_categories(url)
    if category in known:
        return
    nearest = nearest_category(category, known, category_descriptions(url))
    guess = f" (did you mean '{nearest}'?)" if nearest else ""
    raise InputError(f"no report category '{category[:80]}'{guess}; the categories are: {category_names(known)}{creating}")


def category_names(known: list[str], limit: int = 20) -> str:
    """The known categories as one line, the first ``limit`` of them and how many more."""
    if not known:
        return "none yet (`culprit reports categories FILE`)"
    more = f" and {len(known) - limit} more" if len(known) > limit else ""
    return ", ".join(known[:limit]) + more


def describe_trend(trend: CategoryTrend) -> str:
    """One category's movement in a sentence a responder can repeat."""
    usual = f"{trend.usual:.1f}".removesuffix(".0")
    change = (trend.count - trend.usual) / max(trend.usual, 1.0)
    return (
        f"*{trend.category}* reports {trend.direction}: {usual} → {trend.count} "
        f"({change:+.0%}; {trend.count} in the {trend.days} days to {trend.end}, "
        f"{usual} per {trend.days} days usually, {trend.before} in the {trend.days} days before)."
    )
