"""Human labels on stored reports: a responder relabels a report, the daily counts follow, and
labeled reports feed the next ``culprit reports train``; also one report with its "why" for display."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import select

from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.reports import BugReport
from tools.reports.intake import bump_daily_counts

MAX_CATEGORY = 200
_CAME_WITH = {"file": "the labeled file it was ingested from", "http": "the POST /reports that sent it"}


@dataclass(frozen=True)
class Relabel:
    report_id: str
    previous: str | None
    category: str


def relabel_report(report_id: str, category: str, url: str, *, new: bool = False) -> Relabel:
    """Give a stored report a human's category; its day's count moves from the old category to the new one.

    The category must be one the store knows unless ``new`` says a new one is meant: a typo used to
    start a category of its own, and a crafted Slack choice could name any.
    """
    from tools.reports.trends import require_known_category  # trends reads this module's why

    category = category.strip()
    if not category or len(category) > MAX_CATEGORY or "\x00" in category:
        raise InputError(f"a category is 1 to {MAX_CATEGORY} characters without NUL")
    if not new:
        require_known_category(category, url, creating="; `culprit reports relabel ID CATEGORY --new` starts a new one")
    with session_scope(url) as session:
        report = session.get(BugReport, report_id, with_for_update=True)
        if report is None:
            raise InputError(f"no stored report {report_id!r} (raw reports expire after CULPRIT_REPORT_RETENTION_DAYS)")
        previous = report.category
        report.label, report.label_origin = category, "responder"
        if previous != category:
            day = report.created_at.astimezone(UTC).date()
            moves: Counter[tuple[Any, str]] = Counter({(day, category): 1})
            if previous is not None:
                moves[(day, previous)] -= 1
            report.category = category
            bump_daily_counts(session, moves)
    return Relabel(report_id, previous, category)


def stored_labels(url: str) -> list[tuple[str, str]]:
    """(text, label) of every stored report a human labeled, oldest first, for training."""
    with session_scope(url) as session:
        rows = session.execute(
            select(BugReport.text, BugReport.label).where(BugReport.label.is_not(None)).order_by(BugReport.ingested_at)
        ).all()
    return [(text, label) for text, label in rows]


def report_with_why(report_id: str, url: str) -> dict[str, Any]:
    """One stored report as ``culprit reports show`` and the digest print it, with its classification's why."""
    with session_scope(url) as session:
        report = session.get(BugReport, report_id)
        if report is None:
            raise InputError(f"no stored report {report_id!r} (raw reports expire after CULPRIT_REPORT_RETENTION_DAYS)")
        return {
            "id": report.id,
            "text": report.text,
            "created_at": report.created_at.isoformat(),
            "category": report.category,
            "confidence": report.confidence,
            "label": report.label,
            "label_origin": report.label_origin,
            "source": report.source,
            "why": parse_why(report.why),
        }


def label_said(report: dict[str, Any]) -> str:
    """Where a shown report's label came from, as ``reports show`` says it: every label used to read
    "by a person", a labeled file's too."""
    label = report["label"]
    if not label:
        return ""
    if report["label_origin"] == "responder":
        return f", relabeled {label!r} by a person"
    if report["label_origin"] == "report":
        came_with = _CAME_WITH.get(report["source"], f"its source ({report['source']})")
        return f", labeled {label!r} by {came_with}"
    return f", labeled {label!r} (by a person or its source: stored before culprit recorded which)"


def parse_why(stored: str | None) -> dict[str, Any] | None:
    """The stored why, or None when the report predates it or the text is not the expected JSON."""
    try:
        why = json.loads(stored) if stored else None
    except ValueError:
        return None
    return why if isinstance(why, dict) else None


def why_lines(why: dict[str, Any] | None, indent: str = "  ") -> list[str]:
    """The why in a few lines of plain text (CLI, digest, agent tool)."""
    if not why:
        return []
    lines = []
    words = [f"{w.get('term')} ({float(w.get('weight', 0)):.2f})" for w in why.get("words") or []]
    if words:
        lines.append(f"{indent}words that weighed most: " + ", ".join(words))
    for neighbour in why.get("neighbours") or []:
        lines.append(
            f"{indent}like [{neighbour.get('category')}] \u201c{str(neighbour.get('text'))[:120]}\u201d "
            f"(similarity {float(neighbour.get('similarity', 0)):.2f})"
        )
    return lines
