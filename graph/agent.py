"""The agent that answers ``@culprit <question>`` in incident channels.

One LangGraph graph whatever the install: an agent node picks a tool, the
tool node runs it, and the agent answers from the result. With
``CULPRIT_LLM_BASE_URL`` and ``CULPRIT_LLM_MODEL`` the agent node is a tool-calling chat model on vLLM;
without it, :class:`IntentRouter` reads the intent from the text and calls
the tool itself, so the embedded default still answers. If the agent fails
(the model is down, slow or confused), the responder still gets a plain RCA
answer: the bot is never silent in an incident.

In a Slack thread the graph runs with a checkpointer (:mod:`graph.memory`)
keyed by ``channel:thread_ts``, so a follow-up is answered with the thread's
earlier turns in view: the chat model gets them as messages, the router takes
a missing subject from the earlier route (``graph.router.follow_up``). Tool
artifacts (RCA answers, change lists) stay out of the checkpoint: only text is
stored, only the last ``KEPT_TURNS`` answered turns (a turn a failure left half done goes at the next
turn), and only in the thread's latest checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import structlog
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, RemoveMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from graph.agent_tools import AgentContext, build_tools, describe_answer
from graph.llm import make_chat_model
from graph.memory import keep_latest_only, one_turn_at_a_time, open_saver, thread_id
from graph.router import MENU, Route, Vocabulary, can_follow, follow_up, menu_text, window_note
from graph.router import route as route_question
from knowledge.config import Settings
from knowledge.db import failure_fields
from tools.rca.answers import IncidentQuery, RcaAnswer
from tools.rca.store import stored_words
from tools.windows import with_note

log = structlog.get_logger(__name__)

KEPT_TURNS = 6  # turns of a thread the checkpoint keeps and the model sees

SYSTEM_PROMPT = (
    "You are culprit, helping responders during a production incident in Slack. "
    "Use the tools to answer: investigate_incident for symptoms and 'what broke', "
    "changes_in_service for recent changes in a service (hours: the window; 'this week' is 168), "
    "service_owners for owners and on-call of a service or path, service_dependencies for what a "
    "service depends on and what depends on it, suggestion_details for 'why #N?' (rank) or 'what about the config change?' (about) on this thread's answer, "
    "top_complaints, user_complaints, complaint_trend (did a category rise or fall) and report_rise "
    "(why it rose) for what users report (days: the window), "
    "search_wiki for runbooks and postmortems. Time phrases are windows, never topics. "
    "If no tool fits, say what you can answer. Answer in a few lines of Slack mrkdwn, "
    "cite change ids and pages exactly as the tools give them, and never invent a change."
)


@dataclass
class AgentReply:
    """What to post back: the agent's text, and the full RCA answer when one was run."""

    text: str
    rca: RcaAnswer | None = None
    via: str = "router"
    notes: list[str] = field(default_factory=list)
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def route(question: str, vocabulary: Vocabulary | None = None, service: str | None = None) -> tuple[str, dict[str, Any]]:
    """The tool a responder's words ask for and its arguments (``menu`` when none fits); see ``graph.router``."""
    decision = route_question(question, vocabulary or Vocabulary(), service)
    return decision.tool, decision.args


def load_vocabulary(database_url: str) -> Vocabulary:
    """The catalog's services and the report categories, for the router to recognise."""
    from tools.reports.trends import category_descriptions, known_categories
    from tools.services.catalog import service_names

    return Vocabulary(
        services=service_names(database_url),
        categories=known_categories(database_url),
        descriptions=category_descriptions(database_url),
    )


class IntentRouter(BaseChatModel):
    """A deterministic stand-in for a tool-calling model: ``graph.router`` picks the tool, its output is the answer."""

    vocabulary: Vocabulary = Vocabulary()
    service: str | None = None

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
            question = next((str(m.content) for m in reversed(messages) if isinstance(m, HumanMessage)), "")
            message = AIMessage(content=with_note(window_note(question), str(last.content)))
        else:
            decision = follow_up(str(last.content), self.vocabulary, earlier_route(messages[:-1]), self.service)
            name, args = decision.tool, decision.args
            if name == MENU:
                message = AIMessage(content=menu_text(self.vocabulary))
            else:
                message = AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"route-{name}"}])
        return ChatResult(generations=[ChatGeneration(message=message)])


def earlier_route(messages: Sequence[BaseMessage]) -> Route | None:
    """The latest tool call of the thread's earlier turns that a follow-up can take its subject from."""
    for message in reversed(messages):
        for call in reversed(message.tool_calls if isinstance(message, AIMessage) else []):
            candidate = Route(call["name"], dict(call["args"]))
            if can_follow(candidate):
                return candidate
    return None


def _turns(messages: Sequence[BaseMessage]) -> list[list[BaseMessage]]:
    """Messages cut into turns, each starting at a responder's message."""
    turns: list[list[BaseMessage]] = []
    for message in messages:
        if isinstance(message, HumanMessage) or not turns:
            turns.append([])
        turns[-1].append(message)
    return turns


def _answered(turn: list[BaseMessage]) -> bool:
    last = turn[-1]
    return isinstance(turn[0], HumanMessage) and isinstance(last, AIMessage) and not last.tool_calls


def _kept(turns: list[list[BaseMessage]]) -> list[list[BaseMessage]]:
    """The earlier turns a thread keeps: the last answered ones (a turn a failure left half done would be
    an invalid tool-call sequence for a chat API)."""
    return [turn for turn in turns[:-1] if _answered(turn)][-(KEPT_TURNS - 1) :]


def in_view(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """What the model reads: the current turn, after the earlier turns the thread keeps."""
    turns = _turns(messages)
    return [message for turn in [*_kept(turns), *turns[-1:]] for message in turn]


def forgotten(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The earlier messages the model no longer reads, to drop from the checkpoint: older answered turns, and
    every turn a failure left half done (a thread whose model kept failing grew by each such turn)."""
    turns = _turns(messages)
    kept = {id(turn) for turn in _kept(turns)}
    return [message for turn in turns[:-1] if id(turn) not in kept for message in turn if message.id]


class ThreadState(MessagesState, total=False):
    """A thread's conversation, and the incident time its first question set."""

    started_at: str


def build_agent(
    model: BaseChatModel,
    tools: list[BaseTool],
    checkpointer: BaseCheckpointSaver[str] | None = None,
    artifacts: dict[str, Any] | None = None,
) -> CompiledStateGraph:
    """agent -> (tools -> agent)* -> end: the model decides when it has enough to answer.

    Tool artifacts go to ``artifacts`` (by tool call id), not into the state a checkpointer stores."""
    bound = model.bind_tools(tools)
    tool_node = ToolNode(tools)
    kept = artifacts if artifacts is not None else {}

    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        reply = bound.invoke([SystemMessage(SYSTEM_PROMPT), *in_view(state["messages"])])
        return {"messages": [reply, *(RemoveMessage(id=str(message.id)) for message in forgotten(state["messages"]))]}

    def run_tools(state: MessagesState, config: RunnableConfig) -> dict[str, list[BaseMessage]]:
        messages = []
        for message in tool_node.invoke(state, config)["messages"]:
            if isinstance(message, ToolMessage) and message.artifact is not None:
                kept[message.tool_call_id] = message.artifact
                message = message.model_copy(update={"artifact": None})
            messages.append(message)
        return {"messages": messages}

    graph = StateGraph(ThreadState)
    graph.add_node("agent", agent)
    graph.add_node("tools", run_tools)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer)


def answer_question(
    question: str,
    context: AgentContext,
    settings: Settings,
    *,
    model: BaseChatModel | None = None,
    remember: bool = True,
) -> AgentReply:
    """Answer one mention; any failure of the agent falls back to a plain RCA of the question.

    In a thread, with ``remember``, the thread's earlier turns are in view and this one is kept."""
    via = "llm" if model is not None or settings.llm_configured else "router"
    try:
        if model is None:
            model = (
                make_chat_model(settings)
                if settings.llm_configured
                else IntentRouter(vocabulary=load_vocabulary(context.database_url), service=context.service)
            )
        artifacts: dict[str, Any] = {}
        messages = _run(question, context, model, artifacts, remember)
    except Exception as error:  # the agent must never leave a responder without an answer
        log.warning("agent failed; falling back to a plain RCA", via=via, **failure_fields(error))
        return _plain_rca(question, context, note=f"The assistant failed ({type(error).__name__}); this is a plain RCA.")
    rca = next(
        (artifacts[m.tool_call_id] for m in reversed(messages)
         if isinstance(m, ToolMessage) and isinstance(artifacts.get(m.tool_call_id), RcaAnswer)),
        None,
    )  # fmt: skip
    text = str(messages[-1].content).strip() if isinstance(messages[-1], AIMessage) else ""
    if not text and rca is not None:
        text = describe_answer(rca)
    if not text:
        return _plain_rca(question, context, note="The assistant gave no answer; this is a plain RCA.")
    calls = [(call["name"], dict(call["args"])) for m in messages if isinstance(m, AIMessage) for call in m.tool_calls]
    return AgentReply(text=text, rca=rca, via=via, tool_calls=calls)


def _run(
    question: str, context: AgentContext, model: BaseChatModel, artifacts: dict[str, Any], remember: bool
) -> list[BaseMessage]:
    """This turn's messages; in a thread, run on the thread's checkpoint so earlier turns are in view.

    The question goes in redacted (:func:`~tools.rca.store.stored_words`): the checkpoint keeps every message
    of the turn, and a model that never saw an e-mail or a phone cannot repeat one into its answer or tool calls.
    """
    config: RunnableConfig = {"recursion_limit": 12}
    question = stored_words(question)
    if not remember or context.channel is None or context.thread_ts is None:
        result = build_agent(model, build_tools(context), artifacts=artifacts).invoke(
            {"messages": [HumanMessage(question)]}, config
        )
        return list(result["messages"])
    thread = thread_id(context.channel, context.thread_ts)
    config["configurable"] = {"thread_id": thread}
    with open_saver(context.database_url) as saver, one_turn_at_a_time(saver, thread):
        earlier = saver.get_tuple(config)
        started = earlier.checkpoint["channel_values"].get("started_at") if earlier else None
        if started and not context.time_given:  # "and in payments?" is about the thread's incident, not now
            context = replace(context, started_at=datetime.fromisoformat(started))
        graph = build_agent(model, build_tools(context), saver, artifacts)
        # One checkpoint per turn, written when the turn ends.
        turn = {"messages": [HumanMessage(question)], "started_at": context.started_at.isoformat()}
        result = graph.invoke(turn, config, durability="exit")
        keep_latest_only(saver, thread)
    return _turns(result["messages"])[-1]


def _plain_rca(question: str, context: AgentContext, note: str) -> AgentReply:
    query = IncidentQuery(
        text=question, started_at=context.started_at, service=context.service, incident_id=context.incident_id
    )
    answer = context.investigate(query)
    answer.notes.append(note)
    return AgentReply(text=describe_answer(answer), rca=answer, via="fallback", notes=[note])
