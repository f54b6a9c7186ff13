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
from tools.rca.thread import SuggestionDetail
from tools.rca.recent_changes import recent_changes, via_library
from tools.windows import MAX_WINDOW_DAYS, MAX_WINDOW_HOURS, capped, with_note

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
    channel: str | None = None
    thread_ts: str | None = None
    time_given: bool = True  # False: no `at:`, so a thread's follow-up keeps the thread's incident time


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
            f"{suggestion.rank}. {suggestion.change.title} [{suggestion.change_id[:12]}] by {suggestion.change.author or 'unknown'}, "
            f"landed {minutes:.0f} min before, confidence {suggestion.confidence:.0%}"
        )
    return "\n".join(lines)


CHANGES_SHOWN = 20  # the newest changes an answer lists; a year of a busy service has thousands


def _describe_changes(service: str, hours: float, until: datetime, changes: list[ChangeRecord], more: bool) -> str:
    """The changes as lines; ``more``: others landed in the window too, so the count is no total."""
    if not changes:
        return f"No changes landed in `{service}` in the last {hours:g} h (to {until:%Y-%m-%d %H:%M} UTC)."
    count = f"The {len(changes)} newest of more changes" if more else f"{len(changes)} changes"
    lines = [f"*{count} in `{service}` in the last {hours:g} h* (newest first):"]
    for change in changes:
        minutes = (until - change.landed_time).total_seconds() / 60
        via = f" _(shared library {', '.join(change.services)})_" if via_library(change, service) else ""
        lines.append(
            f"• `{change.id[:10]}` {change.title}{via} — {change.author or 'unknown'}, "
            f"{change.landed_time:%Y-%m-%d %H:%M} UTC ({_ago(minutes)}), {change.n_files} files +{change.added}/-{change.deleted}"
        )
    return "\n".join(lines)


def _ago(minutes: float) -> str:
    return f"{minutes:.0f} min before" if minutes < 120 else f"{minutes / 60:.0f} h before"


def responder_tools(context: AgentContext) -> list[BaseTool]:
    """Owners and on-call, dependencies, and the details of a suggestion already given in the thread."""
    from tools.rca.thread import suggestion_about, suggestion_in_thread
    from tools.services.directory import dependencies_of, owners_of

    def service_owners(target: str) -> str:
        """Who owns a service or a repository path, and which team's on-call to page.

        ``target`` is a catalog service name (e.g. "payments") or a path (e.g. "services/payments/api.py").
        """
        answer = owners_of(target, database_url=context.database_url)
        if answer.kind == "unknown":
            return f"No service or path `{target}` in the catalog; did you mean {', '.join(f'`{n}`' for n in answer.suggestions)}?"
        lines = [f"*Owners of `{target}`*" + (f" (service {', '.join(f'`{s}`' for s in answer.services)})" if answer.kind == "path" and answer.services else "") + ":"]
        if answer.team:
            lines.append(f"• owning team: *{answer.team}*; on-call: page the *{answer.on_call}*")
        if answer.code_owners:
            lines.append("• code owners: " + ", ".join(answer.code_owners))
        if len(lines) == 1:
            lines.append("• no owner is recorded (ingest a catalog or CODEOWNERS)")
        return "\n".join(lines)

    def service_dependencies(service: str) -> str:
        """What a service depends on (calls) and which services depend on it (its dependants)."""
        answer = dependencies_of(service, database_url=context.database_url)
        if not answer.found:
            return f"No service `{service}` in the catalog; did you mean {', '.join(f'`{n}`' for n in answer.suggestions)}?"
        kind = " (a shared library)" if answer.library else ""
        return "\n".join([
            f"*`{answer.service}`*{kind}:",
            "• depends on: " + (", ".join(f"`{name}`" for name in answer.depends_on) or "nothing in the catalog"),
            "• dependants (depend on it): " + (", ".join(f"`{name}`" for name in answer.dependants) or "none"),
        ])

    def suggestion_details(rank: int | None = None, about: str | None = None) -> str:
        """Why a suggestion of this thread's earlier answer was suggested: its change and evidence.

        Give ``rank`` for "why #2?", or ``about`` with the words naming it for "what about the config change?".
        """
        if context.channel is None or context.thread_ts is None:
            return "There is no earlier answer here to explain; ask in the thread of an answer."
        where = (context.channel, context.thread_ts)
        if rank is None and about:
            detail = suggestion_about(*where, about, database_url=context.database_url)
        else:
            rank = 1 if rank is None else rank  # "why #0?" is no suggestion, not #1
            detail = suggestion_in_thread(*where, rank, database_url=context.database_url)
        if detail is None:
            return "This thread has no answer with suggestions yet; ask me what broke first."
        if detail.rank == 0:
            missing = f"there is no #{rank}" if rank is not None else f"none is about _{about}_"
            return f"The answer in this thread has {detail.ranks} suggestion(s); {missing}."
        return describe_suggestion(detail)

    return [StructuredTool.from_function(func) for func in (service_owners, service_dependencies, suggestion_details)]


def describe_suggestion(detail: SuggestionDetail) -> str:
    """A stored suggestion with the evidence it was ranked on."""
    evidence = detail.evidence
    lines = [
        f"*#{detail.rank}: {detail.title}* [`{detail.change_id[:10]}`] by {detail.author or 'unknown'}, "
        f"confidence {detail.confidence:.0%}"
    ]
    lines += [f"• {sentence}" for sentence in evidence.get("sentences", [])[:6]]
    facts = [
        ("landed", f"{evidence['minutes_before_incident']:.0f} min before the incident" if evidence.get("minutes_before_incident") else ""),
        ("services", ", ".join(evidence.get("services") or detail.services)),
        ("owners", ", ".join(evidence.get("owners", []))),
        ("dependency path", " → ".join(evidence.get("dependency_path", []))),
        ("matched terms", ", ".join(evidence.get("matched_terms", [])[:8])),
        ("risk", ", ".join(evidence.get("risk", []))),
        ("wiki", ", ".join(evidence.get("wiki_pages", [])[:3])),
    ]
    lines += [f"• {name}: {value}" for name, value in facts if value]
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
        from tools.services.directory import close_services, resolve_service
        from tools.services.catalog import service_names

        names = service_names(context.database_url)
        service = resolve_service(service, names) or service
        hours, note = capped(hours, MAX_WINDOW_HOURS)
        changes = recent_changes(
            service, until=context.started_at, hours=hours, limit=CHANGES_SHOWN + 1, database_url=context.database_url
        )
        more, changes = len(changes) > CHANGES_SHOWN, changes[:CHANGES_SHOWN]
        if not changes and names and service not in names:  # a name nothing knows is no quiet service
            nearest = ", ".join(f"`{name}`" for name in close_services(service, names))
            unknown = (
                f"No service `{service[:80]}` in the catalog, and no repository of that name changed in the last "
                f"{hours:g} h; did you mean {nearest}?"
            )
            return with_note(note, unknown), []
        return with_note(note, _describe_changes(service, hours, context.started_at, changes, more)), changes

    def top_complaints(days: int = 7) -> tuple[str, list[Any]]:
        """What users complain about most, and which complaint categories are rising, over the last days."""
        from tools.reports.trends import rising_categories, top_categories

        end = context.started_at.date()
        days, note = capped(days, MAX_WINDOW_DAYS)
        top = top_categories(end, days, url=context.database_url)
        if not top:
            return with_note(note, f"No user reports in the last {days} days (reports arrive via `culprit reports ingest`, `POST /reports` or the feedback channel)."), []
        rising = [entry for entry in rising_categories(end, days, url=context.database_url) if entry.change > 0]
        lines = [f"*Top complaints, last {days} days:*"]
        lines += [f"• {entry.category}: {entry.count} reports (about {entry.previous:.0f} before)" for entry in top]
        if rising:
            lines.append("*Rising:* " + ", ".join(f"{entry.category} (+{entry.change:.0%})" for entry in rising))
        return with_note(note, "\n".join(lines)), top

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
    return own + responder_tools(context) + trend_tools(context.database_url, context.started_at.date())
