"""The agent that answers ``@culprit <question>`` in incident channels.

One LangGraph graph whatever the install: an agent node picks a tool, the
tool node runs it, and the agent answers from the result. With
``CULPRIT_LLM_BASE_URL`` and ``CULPRIT_LLM_MODEL`` the agent node is a tool-calling chat model on vLLM;
without it, :class:`IntentRouter` reads the intent from the text and calls
the tool itself, so the embedded default still answers. If the agent fails
(the model is down, slow or confused), the responder still gets a plain RCA
answer: the bot is never silent in an incident.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from graph.agent_tools import AgentContext, build_tools, describe_answer
from graph.llm import make_chat_model
from knowledge.config import Settings
from tools.rca.answers import IncidentQuery, RcaAnswer

log = structlog.get_logger(__name__)

SYSTEM_PROMPT = (
    "You are culprit, helping responders during a production incident in Slack. "
    "Use the tools to answer: investigate_incident for symptoms and 'what broke', "
    "changes_in_service for recent changes, top_complaints, user_complaints and report_rise "
    "for what users report, "
    "search_wiki for runbooks and postmortems. Answer in a few lines of Slack mrkdwn, "
    "cite change ids and pages exactly as the tools give them, and never invent a change."
)

_RECENT = re.compile(
    r"\b(?:recent|latest|last|new)\s+(?:changes?|deploys?|commits?|merges?)\s+(?:in|to|for|on|of)\s+`?(?P<service>[\w.\-/]+)",
    re.IGNORECASE,
)
_CHANGED = re.compile(
    r"\bwhat\s+(?:changed|shipped|landed|was\s+deployed|got\s+deployed)\s+(?:in|to|on|for)\s+`?(?P<service>[\w.\-/]+)",
    re.IGNORECASE,
)
_WINDOW = re.compile(r"\b(?:last|past)\s+(?P<count>\d+)\s*(?P<unit>h|hours?|d|days?)\b", re.IGNORECASE)
_TRENDS = re.compile(r"complain|bug[ -]?reports?|user reports?|reports about|users? (?:are )?(?:saying|hitting)", re.IGNORECASE)
_TOPIC = re.compile(
    r"\b(?:about|with|for|in|on)\s+[\"'“]?(?P<topic>[\w][\w \-]{1,60}?)[\"'”]?\s*(?:reports?\s+)?(?:rise|rising|rose|go up|went up|spike|spiking|spiked|increase|jump|\?|$)",
    re.IGNORECASE,
)
_RISE = re.compile(r"\b(?:rise|rising|rose|go up|went up|spike|spiking|spiked|increase|jump)", re.IGNORECASE)
_LEADING_PREPOSITION = re.compile(r"^(?:(?:in|on|about|with|for|the)\s+)+", re.IGNORECASE)
_WIKI = re.compile(r"\b(?:runbooks?|playbooks?|postmortems?|post-mortems?|wiki|docs?\s+(?:for|on|about))\b", re.IGNORECASE)


@dataclass
class AgentReply:
    """What to post back: the agent's text, and the full RCA answer when one was run."""

    text: str
    rca: RcaAnswer | None = None
    via: str = "router"
    notes: list[str] = field(default_factory=list)


def route(question: str) -> tuple[str, dict[str, Any]]:
    """The tool a responder's words ask for, and its arguments; an RCA unless clearly otherwise."""
    recent = _RECENT.search(question) or _CHANGED.search(question)
    if recent:
        args: dict[str, Any] = {"service": recent.group("service").strip("`?.,")}
        window = _WINDOW.search(question)
        if window:
            count = int(window.group("count"))
            args["hours"] = count * 24 if window.group("unit").lower().startswith("d") else count
        return "changes_in_service", args
    if _TRENDS.search(question):
        found = _TOPIC.search(question)
        topic = _LEADING_PREPOSITION.sub("", found.group("topic")).strip() if found else ""
        if not topic or topic.lower() in {"users", "it", "this", "that", "the app"}:
            return "top_complaints", {}
        if _RISE.search(question):
            return "report_rise", {"category": topic}
        return "user_complaints", {"topic": topic}
    if _WIKI.search(question):
        return "search_wiki", {"query": question}
    return "investigate_incident", {"symptom": question}


class IntentRouter(BaseChatModel):
    """A deterministic stand-in for a tool-calling model: regexes pick the tool, its output is the answer."""

    @property
    def _llm_type(self) -> str:
        return "culprit-intent-router"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> IntentRouter:  # type: ignore[override]
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            message = AIMessage(content=str(last.content))
        else:
            name, args = route(str(last.content))
            message = AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"route-{name}"}])
        return ChatResult(generations=[ChatGeneration(message=message)])


def build_agent(model: BaseChatModel, tools: list[BaseTool]) -> CompiledStateGraph:
    """agent -> (tools -> agent)* -> end: the model decides when it has enough to answer."""
    bound = model.bind_tools(tools)

    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [bound.invoke([SystemMessage(SYSTEM_PROMPT), *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def answer_question(
    question: str,
    context: AgentContext,
    settings: Settings,
    *,
    model: BaseChatModel | None = None,
) -> AgentReply:
    """Answer one mention; any failure of the agent falls back to a plain RCA of the question."""
    via = "llm" if model is not None or settings.llm_configured else "router"
    try:
        model = model or (make_chat_model(settings) if settings.llm_configured else IntentRouter())
        result = build_agent(model, build_tools(context)).invoke(
            {"messages": [HumanMessage(question)]}, config={"recursion_limit": 12}
        )
    except Exception as error:  # the agent must never leave a responder without an answer
        log.warning("agent failed; falling back to a plain RCA", error=repr(error)[:300], via=via)
        return _plain_rca(question, context, note=f"The assistant failed ({type(error).__name__}); this is a plain RCA.")
    messages: list[BaseMessage] = result["messages"]
    rca = next(
        (m.artifact for m in reversed(messages) if isinstance(m, ToolMessage) and isinstance(m.artifact, RcaAnswer)),
        None,
    )
    text = str(messages[-1].content).strip() if isinstance(messages[-1], AIMessage) else ""
    if not text and rca is not None:
        text = describe_answer(rca)
    if not text:
        return _plain_rca(question, context, note="The assistant gave no answer; this is a plain RCA.")
    return AgentReply(text=text, rca=rca, via=via)


def _plain_rca(question: str, context: AgentContext, note: str) -> AgentReply:
    query = IncidentQuery(
        text=question, started_at=context.started_at, service=context.service, incident_id=context.incident_id
    )
    answer = context.investigate(query)
    answer.notes.append(note)
    return AgentReply(text=describe_answer(answer), rca=answer, via="fallback", notes=[note])
