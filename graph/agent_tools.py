"""The agent's tools: culprit's capabilities in tools/ and graph/, as LangChain tools.

Each tool answers in short Slack mrkdwn (a chat model reads it, and the
deterministic router posts it as is) and returns the domain object as the
tool message's artifact, so the Slack layer can render the full answer
(an RCA with its feedback buttons) without parsing text.

The report tools ``user_complaints`` and ``report_rise`` come from
``tools.reports.trends`` as they are; an empty wiki or report store answers with the
command that fills it instead of failing the conversation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from langchain_core.tools import BaseTool, StructuredTool

from knowledge.changes import ChangeRecord
from tools.rca.answers import IncidentQuery, RcaAnswer, WikiHit
from tools.rca.recent_changes import recent_changes

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection


@dataclass(frozen=True)
class AgentContext:
    """What the conversation already knows: when the incident began, where answers are stored,
    the caller's RCA (with its cached models and judge) and how to open the wiki."""

    started_at: datetime
    database_url: str
    investigate: Callable[[IncidentQuery], RcaAnswer]
    wiki: Callable[[], Collection]
    incident_id: str | None = None
    service: str | None = None


def describe_answer(answer: RcaAnswer) -> str:
    """An RCA answer in a few lines, for a chat model to summarise or a thread to read."""
    if not answer.confident and answer.stale_sources:
        lines = ["My knowledge of recent changes is stale (it ends before the incident began):"]
        return "\n".join(lines + [f"• {source.summary}. Fix: {source.fix}" for source in answer.stale_sources])
    if not (answer.confident and answer.suggestions):
        lines = [f"Not confident enough ({answer.confidence:.0%}) to name a culprit. Strongest signals:"]
        lines += [f"• {signal}" for signal in answer.strongest_signals[:5]] or ["• none stood out"]
        return "\n".join(lines)
    lines = [f"Likely culprits (confidence {answer.confidence:.0%}):"]
    for suggestion in answer.suggestions[:5]:
        minutes = suggestion.evidence.minutes_before_incident
        lines.append(
            f"{suggestion.rank}. {suggestion.change.title} [{suggestion.change_id[:12]}] by {suggestion.change.author}, "
            f"landed {minutes:.0f} min before, confidence {suggestion.confidence:.0%}"
        )
    return "\n".join(lines)


def _describe_changes(service: str, hours: float, changes: list[ChangeRecord]) -> str:
    if not changes:
        return f"No changes landed in `{service}` in the last {hours:g} h."
    lines = [f"*{len(changes)} changes in `{service}` in the last {hours:g} h* (newest first):"]
    for change in changes:
        lines.append(
            f"• `{change.id[:10]}` {change.title} — {change.author}, "
            f"{change.landed_time:%Y-%m-%d %H:%M} UTC, {change.n_files} files +{change.added}/-{change.deleted}"
        )
    return "\n".join(lines)


def build_tools(context: AgentContext) -> list[BaseTool]:
    """The agent's tools, bound to this conversation's incident time and database."""

    def investigate_incident(symptom: str, service: str | None = None) -> tuple[str, RcaAnswer]:
        """Find the code changes most likely to have caused an incident, with evidence and confidence.

        Use for "what broke X", "why is X failing", or any description of a symptom.
        """
        query = IncidentQuery(
            text=symptom,
            started_at=context.started_at,
            service=service or context.service,
            incident_id=context.incident_id,
        )
        answer = context.investigate(query)
        return describe_answer(answer), answer

    def changes_in_service(service: str, hours: float = 48) -> tuple[str, list[ChangeRecord]]:
        """List the code changes that landed in a service recently (default: the last 48 hours)."""
        changes = recent_changes(
            service, until=context.started_at, hours=hours, database_url=context.database_url
        )
        return _describe_changes(service, hours, changes), changes

    def top_complaints(days: int = 7) -> tuple[str, list[Any]]:
        """What users complain about most, and which complaint categories are rising, over the last days."""
        from tools.reports.trends import rising_categories, top_categories

        end = context.started_at.date()
        top = top_categories(end, days, url=context.database_url)
        if not top:
            return f"No user reports in the last {days} days (reports arrive via `culprit reports ingest`, `POST /reports` or the feedback channel).", []
        rising = [entry for entry in rising_categories(end, days, url=context.database_url) if entry.change > 0]
        lines = [f"*Top complaints, last {days} days:*"]
        lines += [f"• {entry.category}: {entry.count} reports (about {entry.previous:.0f} before)" for entry in top]
        if rising:
            lines.append("*Rising:* " + ", ".join(f"{entry.category} (+{entry.change:.0%})" for entry in rising))
        return "\n".join(lines), top

    def search_wiki(query: str, service: str | None = None) -> tuple[str, list[WikiHit]]:
        """Search runbooks, postmortems and service docs in the team wiki."""
        from tools.wiki.search import search_wiki as hybrid_search

        hits = hybrid_search(query, context.wiki(), service=service or context.service, k=5)
        if not hits:
            return f"No wiki page matches _{query}_ (is the wiki indexed? `culprit ingest wiki DIR`).", hits
        lines = [f"*Wiki pages for* _{query}_:"]
        lines += [f"• *{hit.title or hit.page}* › {hit.heading} (`{hit.page}`): {hit.snippet[:200]}" for hit in hits]
        return "\n".join(lines), hits

    from tools.reports.trends import trend_tools

    own = [
        StructuredTool.from_function(func, response_format="content_and_artifact")
        for func in (investigate_incident, changes_in_service, top_complaints, search_wiki)
    ]
    return own + trend_tools(context.database_url)
