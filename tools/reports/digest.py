"""The weekly digest: what users reported most, what rose, how many fitted no category, which
spikes fired, where changes landed (by service, as ``knowledge.attribution`` placed them) and
how RCA did.

Built as plain text, Block Kit-shaped dicts and a PNG chart, so the bot only
has to post it and ``culprit digest --dry-run`` can print the same thing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select

from knowledge.attribution import ServiceChanges, changes_by_service
from knowledge.db import session_scope
from knowledge.incidents import Feedback, Suggestion
from knowledge.reports import Alert, BugReport, Category
from tools.feedback.stats import WeekQuality, quality_by_week
from tools.reports.classifiers import OTHER
from tools.reports.display import NAME_CHARS, mrkdwn, one_line
from tools.reports.legend import plain_legend
from tools.reports.labels import parse_why, why_lines
from tools.reports.trends import CategoryCount, category_totals, daily_series, rising_categories, top_categories


SECTION_CHARS = 2900  # Slack refuses a message with a section over 3,000 characters: the whole digest with it
SPIKES_LISTED = 20


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
    rca_quality: WeekQuality | None = None
    changes: list[ServiceChanges] = field(default_factory=list)
    unsorted: int = 0
    unsure: list[dict[str, Any]] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        lines = [f"*Weekly user-report digest, {self.start} to {self.end} ({self.week})*", "", "*Top categories*"]
        lines += [f"• {_name(c.category)}: {c.count} reports ({_change(c)})" for c in self.top] or ["• no reports this week"]
        lines += ["", "*Rising*"]
        lines += [f"• {_name(c.category)}: {c.count} vs {c.previous:.1f} a week usually ({_change(c)})" for c in self.rising] or ["• nothing rose"]
        lines += ["", "*Not sorted*"]
        lines += [
            f"• {self.unsorted} reports went to '{OTHER}' (classifier confidence below CULPRIT_OTHER_CONFIDENCE, "
            "or no classifier): `culprit reports discover` may find a new category among them"
            if self.unsorted else "• none: every report fitted a category"
        ]
        if self.unsure:
            lines += ["", "*Least sure this week* (relabel with the menu or `culprit reports relabel ID CATEGORY`)"]
            for report in self.unsure:
                lines.append(_unsure_line(report))
                lines += why_lines(report["why"], indent="    ")
        lines += ["", "*Spikes*"]
        lines += [
            f"• {_name(s['category'])} on {s['day']}: {s['count']} reports vs usual {s['baseline']:.1f}"
            for s in self.spikes[:SPIKES_LISTED]
        ] or ["• none"]
        if len(self.spikes) > SPIKES_LISTED:
            lines.append(f"• … and {len(self.spikes) - SPIKES_LISTED} more")
        lines += ["", "*Changes by service*"]
        lines += [
            f"• {c.service}: {c.own}" + (f" (+{c.via_libraries} through shared libraries)" if c.via_libraries else "")
            for c in self.changes[:8]
        ] or ["• no changes landed"]
        lines += [
            "",
            "*RCA*",
            f"• incidents analysed: {self.incidents_analysed}",
            f"• suggestions confirmed by responders: {self.suggestions_confirmed} (rejected: {self.suggestions_rejected})",
        ]
        quality = self.rca_quality
        if quality is not None and quality.with_confirmed_cause:
            lines.append(
                f"• precision (confirmed cause in the five): {quality.cause_in_five}/{quality.with_confirmed_cause}"
                f" = {quality.precision:.0%}"
            )
        if quality is not None and quality.confident:
            lines.append(
                f"• false confidence (sure answers that missed the confirmed cause): "
                f"{quality.false_confident}/{quality.confident} = {quality.false_confidence_rate:.0%}"
            )
        return "\n".join(lines)

    @property
    def blocks(self) -> list[dict[str, Any]]:
        """The text's parts as sections; each least-sure report gets its own, with a relabel menu."""
        parts = self.text.split("\n\n")
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": _fit(mrkdwn(part))}} for part in parts if not part.startswith("*Least sure")]
        if self.unsure:
            heading = next(part for part in parts if part.startswith("*Least sure")).split("\n")[0]
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": heading}})
            for report in self.unsure:
                text = "\n".join([_unsure_line(report), *why_lines(report["why"], indent="    ")])
                block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn(text)[:2900]}}
                options = relabel_options(report["id"], [c for c in self.categories if c != report["category"]])
                if options:
                    block["accessory"] = {
                        "type": "static_select",
                        "action_id": RELABEL_ACTION,
                        "placeholder": {"type": "plain_text", "text": "Relabel as…"},
                        "options": options,
                    }
                blocks.append(block)
        return blocks


RELABEL_ACTION = "report_relabel"
RELABEL_SEPARATOR = "\t"


def relabel_options(report_id: str, categories: list[str]) -> list[dict[str, Any]]:
    """Slack select options whose value is ``report id<TAB>category`` (Slack caps values at 150 characters)."""
    return [
        {"text": {"type": "plain_text", "text": name[:75]}, "value": f"{report_id}{RELABEL_SEPARATOR}{name}"}
        for name in categories[:100]
        if len(report_id) + len(name) + 1 <= 150
    ]


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def build_digest(end: date, url: str, with_chart: bool = True, min_confidence: float = 0.5) -> Digest:
    """The digest for the seven days ending ``end`` (inclusive); ``min_confidence`` is the answer threshold."""
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
        rca_quality=_rca_quality(since, until, url, min_confidence),
        changes=changes_by_service(url, since, until),
        unsorted=category_totals(start, end, url)[OTHER],
        unsure=least_sure_reports(since, until, url),
        categories=known_categories(end, url),
    )


def _rca_quality(since: datetime, until: datetime, url: str, min_confidence: float) -> WeekQuality | None:
    """The week's answers, judged by the causes confirmed since, as one row."""
    weeks = quality_by_week(database_url=url, min_confidence=min_confidence, since=since, until=until)
    if not weeks:
        return None
    fields = ("answered", "with_confirmed_cause", "cause_in_five", "confident", "false_confident", "up_votes", "down_votes")
    return WeekQuality(week=iso_week(until.date() - timedelta(days=1)), **{f: sum(getattr(w, f) for w in weeks) for f in fields})


def least_sure_reports(since: datetime, until: datetime, url: str, limit: int = 3) -> list[dict[str, Any]]:
    """The period's classified reports the classifier was least sure of and no person has labeled."""
    with session_scope(url) as session:
        rows = session.execute(
            select(BugReport.id, BugReport.text, BugReport.category, BugReport.confidence, BugReport.why)
            .where(BugReport.created_at >= since, BugReport.created_at < until)
            .where(BugReport.category.is_not(None), BugReport.label.is_(None), BugReport.confidence.is_not(None))
            .order_by(BugReport.confidence, BugReport.id)
            .limit(limit)
        ).all()
    return [
        {"id": r.id, "text": r.text, "category": r.category, "confidence": float(r.confidence), "why": parse_why(r.why)}
        for r in rows
    ]


def known_categories(end: date, url: str) -> list[str]:
    """Categories a report can be relabeled to: the configured ones and those counted in the last 12 weeks."""
    with session_scope(url) as session:
        configured = set(session.scalars(select(Category.name)))
    counted = set(category_totals(end - timedelta(weeks=12), end, url))
    return sorted((configured | counted) - {OTHER})


def category_chart(categories: list[str], end: date, url: str, days: int = 28) -> bytes:
    """Daily counts of the top categories over four weeks, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 3.5), dpi=100)
    lines = []
    for category in categories:
        series = daily_series(category, days, end, url).get(category, [])
        lines += axes.plot([d for d, _ in series], [c for _, c in series], linewidth=1.5)
    axes.set_title(f"User reports per day, four weeks to {end}")
    axes.set_ylabel("reports")
    plain_legend(axes, lines, [_name(category) for category in categories], loc="upper left", fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _unsure_line(report: dict[str, Any]) -> str:
    text = " ".join(report["text"].split())
    return f"• [{_name(report['category'])} {report['confidence']:.2f}] \u201c{text[:160]}\u201d (id {report['id']})"


def _name(category: str) -> str:
    """A category as one short line: a long one pushed a section past Slack's limit."""
    return one_line(category, NAME_CHARS)


def _fit(section: str) -> str:
    """A section's whole lines up to ``SECTION_CHARS``, then how many were left out."""
    lines = section.split("\n")
    kept, size = 0, 0
    while kept < len(lines) and size + len(lines[kept]) + 1 <= SECTION_CHARS - 40:
        size += len(lines[kept]) + 1
        kept += 1
    if kept == len(lines):
        return section
    return "\n".join([*lines[:kept], f"• … ({len(lines) - kept} more)"])


def _change(category: CategoryCount) -> str:
    return f"{category.change:+.0%} vs the previous four weeks' average" if category.previous else "new"
