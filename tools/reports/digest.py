"""The weekly digest: what users reported most, what rose, how many fitted no category, which
spikes fired, and how RCA did.

Built as plain text, Block Kit-shaped dicts and a PNG chart, so the bot only
has to post it and ``culprit digest --dry-run`` can print the same thing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select

from knowledge.db import session_scope
from knowledge.incidents import Feedback, Suggestion
from knowledge.reports import Alert
from tools.reports.classifiers import OTHER
from tools.reports.trends import CategoryCount, category_totals, daily_series, rising_categories, top_categories


@dataclass
class Digest:
    week: str
    start: date
    end: date
    top: list[CategoryCount]
    rising: list[CategoryCount]
    spikes: list[dict[str, Any]]
    incidents_analysed: int
    suggestions_confirmed: int
    suggestions_rejected: int
    chart_png: bytes | None
    unsorted: int = 0

    @property
    def text(self) -> str:
        lines = [f"*Weekly user-report digest, {self.start} to {self.end} ({self.week})*", "", "*Top categories*"]
        lines += [f"• {c.category}: {c.count} reports ({_change(c)})" for c in self.top] or ["• no reports this week"]
        lines += ["", "*Rising*"]
        lines += [f"• {c.category}: {c.count} vs {c.previous:.1f} a week before ({_change(c)})" for c in self.rising] or ["• nothing rose"]
        lines += ["", "*Not sorted*"]
        lines += [
            f"• {self.unsorted} reports went to '{OTHER}' (classifier confidence below CULPRIT_OTHER_CONFIDENCE, "
            "or no classifier): `culprit reports discover` may find a new category among them"
            if self.unsorted else "• none: every report fitted a category"
        ]
        lines += ["", "*Spikes*"]
        lines += [f"• {s['category']} on {s['day']}: {s['count']} reports vs usual {s['baseline']:.1f}" for s in self.spikes] or ["• none"]
        lines += [
            "",
            "*RCA*",
            f"• incidents analysed: {self.incidents_analysed}",
            f"• suggestions confirmed by responders: {self.suggestions_confirmed} (rejected: {self.suggestions_rejected})",
        ]
        return "\n".join(lines)

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return [{"type": "section", "text": {"type": "mrkdwn", "text": part}} for part in self.text.split("\n\n")]


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def build_digest(end: date, url: str, with_chart: bool = True) -> Digest:
    """The digest for the seven days ending ``end`` (inclusive)."""
    start = end - timedelta(days=6)
    since, until = datetime.combine(start, time(), UTC), datetime.combine(end + timedelta(days=1), time(), UTC)
    with session_scope(url) as session:
        spikes = [
            {"category": a.key, "day": a.started_on, "count": a.details.get("count", 0), "baseline": float(a.details.get("baseline", 0))}
            for a in session.scalars(
                select(Alert).where(Alert.kind == "spike", Alert.started_on >= start, Alert.started_on <= end).order_by(Alert.started_on)
            )
        ]
        incidents = session.scalar(
            select(func.count(func.distinct(Suggestion.incident_id))).where(Suggestion.created_at >= since, Suggestion.created_at < until)
        ) or 0
        votes = session.execute(
            select(Feedback.suggestion_id, func.sum(Feedback.vote)).where(Feedback.at >= since, Feedback.at < until).group_by(Feedback.suggestion_id)
        ).all()
    top = top_categories(end, 7, url=url)
    return Digest(
        week=iso_week(end),
        start=start,
        end=end,
        top=top,
        rising=rising_categories(end, 7, url=url),
        spikes=spikes,
        incidents_analysed=int(incidents),
        suggestions_confirmed=sum(1 for _, total in votes if (total or 0) > 0),
        suggestions_rejected=sum(1 for _, total in votes if (total or 0) < 0),
        chart_png=category_chart([c.category for c in top], end, url) if with_chart and top else None,
        unsorted=category_totals(start, end, url)[OTHER],
    )


def category_chart(categories: list[str], end: date, url: str, days: int = 28) -> bytes:
    """Daily counts of the top categories over four weeks, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 3.5), dpi=100)
    for category in categories:
        series = daily_series(category, days, end, url).get(category, [])
        axes.plot([d for d, _ in series], [c for _, c in series], label=category, linewidth=1.5)
    axes.set_title(f"User reports per day, four weeks to {end}")
    axes.set_ylabel("reports")
    axes.legend(loc="upper left", fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _change(category: CategoryCount) -> str:
    return f"{category.change:+.0%} vs the previous four weeks' average" if category.previous else "new"
