"""The agent's tools: culprit's capabilities in tools/ and graph/, as LangChain tools.

Each tool answers in short Slack mrkdwn (a chat model reads it, and the
deterministic router posts it as is) and returns the domain object as the
tool message's artifact, so the Slack layer can render the full answer
(an RCA with its feedback buttons) without parsing text.

Report trends come from the analytics part of culprit, which an install may
not have; the tool then says what to run instead of failing the conversation.
An empty wiki likewise answers with the command that indexes it.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from tools.answers import IncidentQuery, RcaAnswer, WikiHit
from tools.recent_changes import RecentChange, recent_changes


@dataclass(frozen=True)
class AgentContext:
    """What the conversation already knows: when the incident began and where answers are stored."""

    started_at: datetime
    database_url: str | None = None
    incident_id: str | None = None
    service: str | None = None
    investigate: Callable[[IncidentQuery], RcaAnswer] | None = None

    def run_rca(self, query: IncidentQuery) -> RcaAnswer:
        """The caller's RCA (with its cached models and judge) or the pipeline with its defaults."""
        if self.investigate is not None:
            return self.investigate(query)
        from graph.rca_graph import run_rca

        return run_rca(query, database_url=self.database_url, persist=True)


def describe_answer(answer: RcaAnswer) -> str:
    """An RCA answer in a few lines, for a chat model to summarise or a thread to read."""
    if not (answer.confident and answer.suggestions):
        lines = [f"Not confident enough ({answer.confidence:.0%}) to name a culprit. Strongest signals:"]
        lines += [f"• {signal}" for signal in answer.strongest_signals[:5]] or ["• none stood out"]
        return "\n".join(lines)
    lines = [f"Likely culprits (confidence {answer.confidence:.0%}):"]
    for suggestion in answer.suggestions[:5]:
        minutes = suggestion.evidence.minutes_before_incident
        lines.append(
            f"{suggestion.rank}. {suggestion.title} [{suggestion.change_id[:12]}] by {suggestion.author}, "
            f"landed {minutes:.0f} min before, confidence {suggestion.confidence:.0%}"
        )
    return "\n".join(lines)


def _describe_changes(service: str, hours: float, changes: list[RecentChange]) -> str:
    if not changes:
        return f"No changes landed in `{service}` in the last {hours:g} h."
    lines = [f"*{len(changes)} changes in `{service}` in the last {hours:g} h* (newest first):"]
    for change in changes:
        lines.append(
            f"• `{change.change_id[:10]}` {change.title} — {change.author}, "
            f"{change.landed_time:%Y-%m-%d %H:%M} UTC, {change.n_files} files +{change.added}/-{change.deleted}"
        )
    return "\n".join(lines)


def _optional_module(name: str) -> Any | None:
    """Another part of culprit, if this install has it; its own import errors still surface."""
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


def build_tools(context: AgentContext) -> list[BaseTool]:
    """The four tools, bound to this conversation's incident time and database."""

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
        answer = context.run_rca(query)
        return describe_answer(answer), answer

    def changes_in_service(service: str, hours: float = 48) -> tuple[str, list[RecentChange]]:
        """List the code changes that landed in a service recently (default: the last 48 hours)."""
        changes = recent_changes(
            service, until=context.started_at, hours=hours, database_url=context.database_url
        )
        return _describe_changes(service, hours, changes), changes

    def report_trends(category: str | None = None, days: int = 14) -> tuple[str, Any]:
        """What users are complaining about: bug-report counts by category, and which are rising."""
        module = _optional_module("tools.trends")
        if module is None or not hasattr(module, "describe_trends"):
            return "Bug-report trends are not available on this install (ingest reports with `culprit reports ingest`).", None
        return module.describe_trends(category=category, days=days, database_url=context.database_url), None

    def search_wiki(query: str, service: str | None = None) -> tuple[str, list[WikiHit]]:
        """Search runbooks, postmortems and service docs in the team wiki."""
        from tools.wiki_search import search_wiki as hybrid_search

        hits = hybrid_search(query, service=service or context.service, k=5)
        if not hits:
            return f"No wiki page matches _{query}_ (is the wiki indexed? `culprit ingest wiki DIR`).", hits
        lines = [f"*Wiki pages for* _{query}_:"]
        lines += [f"• *{hit.title or hit.page}* › {hit.heading} (`{hit.page}`): {hit.snippet[:200]}" for hit in hits]
        return "\n".join(lines), hits

    return [
        StructuredTool.from_function(func, response_format="content_and_artifact")
        for func in (investigate_incident, changes_in_service, report_trends, search_wiki)
    ]
