"""The mention agent: the intent router without an LLM, a scripted tool-calling model, and the fallback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from graph.agent import answer_question, route
from graph.agent_tools import AgentContext
from graph.router import Vocabulary
from knowledge.config import get_settings
from knowledge.db import utcnow
from tests.bot.conftest import SEEDED_CHANGES
from tools.rca.answers import IncidentQuery, RcaAnswer
from tools.windows import CAPPED_WINDOW, MAX_WINDOW_DAYS, MAX_WINDOW_HOURS, SHORTEST_WINDOW


class ScriptedModel(BaseChatModel):
    """A tool-calling model that plays back fixed turns and keeps what it was shown.

    A double for the LLM: the tiny vLLM test model answers nonsense, so tool choices are scripted.
    """

    turns: list[AIMessage]
    seen: list[list[BaseMessage]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:  # type: ignore[override]
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.turns[len(self.seen) - 1])])


class BrokenModel(ScriptedModel):
    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        raise ConnectionError("vLLM is down")


@pytest.fixture
def context(store: str) -> AgentContext:
    """The store's conversation, investigated by the RCA pipeline as ``culprit serve`` runs it."""
    from functools import partial

    from graph.rca_graph import run_rca
    from knowledge.wiki.store import configured_wiki
    from tools.rca.resources import load_resources

    settings = get_settings()
    resources = load_resources(settings)
    return AgentContext(
        started_at=utcnow(),
        database_url=store,
        investigate=lambda query: run_rca(query, database_url=store, resources=resources),
        wiki=partial(configured_wiki, settings),
        service=None,
    )


VOCABULARY = Vocabulary(services=["checkout", "payments", "api-gateway"], categories=["login", "payments", "crash"])


@pytest.mark.parametrize(
    ("question", "tool", "args"),
    [
        ("any recent changes in payments in the last 2 days?", "changes_in_service", {"service": "payments", "hours": 48}),
        ("what shipped to checkout", "changes_in_service", {"service": "checkout"}),
        ("<@U123> what changed in *api gateway* since yesterday", "changes_in_service", {"service": "api-gateway", "hours": 48}),
        ("what are users complaining about?", "top_complaints", {"days": 7}),
        ("what are users complaining about this week?", "top_complaints", {"days": 7}),
        ("what are users complaining about in payments?", "user_complaints", {"topic": "payments", "days": 7}),
        ("did login complaints rise?", "complaint_trend", {"category": "login", "days": 7}),
        ("are people complaining more about logging in since yesterday", "complaint_trend", {"category": "login", "days": 2}),
        ("why did reports about login errors spike?", "report_rise", {"category": "login", "days": 7}),
        ("who owns the paymnets service?", "service_owners", {"target": "payments"}),
        ("who's on call for services/checkout/cart.py", "service_owners", {"target": "services/checkout/cart.py"}),
        ("what depends on payments", "service_dependencies", {"service": "payments"}),
        ("why #2?", "suggestion_details", {"rank": 2}),
        ("where is the runbook for payments", "search_wiki", {"query": "where is the runbook for payments"}),
        ("checkout is throwing 502s", "investigate_incident", {"symptom": "checkout is throwing 502s", "service": "checkout"}),
        ("is login down?", "investigate_incident", {"symptom": "is login down?"}),
        ("did checkout break after the deploy?", "investigate_incident", {"symptom": "did checkout break after the deploy?", "service": "checkout"}),
        ("what's for lunch", "menu", {}),
    ],
)
def test_the_router_reads_the_intent(question: str, tool: str, args: dict[str, Any]) -> None:
    assert route(question, VOCABULARY) == (tool, args)


@pytest.mark.parametrize("flood", ["<@" * 500_000, "<http:" * 170_000, "<http:|" * 150_000])
def test_the_router_reads_a_question_after_a_megabyte_of_unclosed_mentions_or_links(flood: str) -> None:
    # Each unclosed "<@" once read to the end of the text: quadratic, minutes for a megabyte.
    assert route(flood + " checkout is throwing 502s", VOCABULARY) == (
        "investigate_incident", {"symptom": flood + " checkout is throwing 502s", "service": "checkout"}
    )


def test_without_an_llm_the_router_answers_recent_changes_from_the_store(context: AgentContext) -> None:
    reply = answer_question("what changed in checkout in the last 24 hours", context, get_settings())
    assert reply.via == "router" and reply.rca is None
    assert reply.text.startswith("*3 changes in `checkout` in the last 24 h*")
    assert "new address form validation" in reply.text and "migrate orders table" in reply.text
    assert "payments:" not in reply.text


def test_without_an_llm_a_symptom_runs_the_rca_and_keeps_the_answer(context: AgentContext) -> None:
    reply = answer_question("card payments fail with 502", context, get_settings())
    assert isinstance(reply.rca, RcaAnswer) and reply.rca.confident
    assert all(s.suggestion_id is not None for s in reply.rca.suggestions)
    # Card payments failing points at the three payments changes, and the answer names each one.
    top = reply.rca.suggestions[:3]
    assert {s.change.title for s in top} == {title for service, title, _, _ in SEEDED_CHANGES if service == "payments"}
    lines = reply.text.splitlines()
    assert lines[0].startswith("Likely culprits (confidence")
    for rank, suggestion in enumerate(top, start=1):
        assert lines[rank].startswith(f"{rank}. {suggestion.change.title} [{suggestion.change.id[:12]}]")
        assert f"by {suggestion.change.author}" in lines[rank]


def _reports(database_url: str, category: str, texts: list[str], days_ago: int, per_day: int) -> None:
    from datetime import timedelta

    from knowledge.db import session_scope
    from knowledge.reports import BugReport, CategoryDaily

    day = utcnow() - timedelta(days=days_ago)
    with session_scope(database_url) as session:
        for number, text in enumerate(texts):
            session.add(BugReport(id=f"{category}-{days_ago}-{number}", content_hash=f"{category}-{days_ago}-{number}", text=text, created_at=day, category=category))
        session.add(CategoryDaily(day=day.date(), category=category, count=per_day))


def test_report_questions_are_answered_from_the_report_tables(context: AgentContext) -> None:
    empty = answer_question("what are users complaining about?", context, get_settings())
    assert empty.text.startswith("No user reports in the last 7 days")

    _reports(context.database_url, "login", ["cannot log in after update", "login button does nothing"], 1, 40)
    _reports(context.database_url, "feed", ["feed not loading on wifi"], 2, 12)
    _reports(context.database_url, "feed", ["feed slow"], 12, 12)
    top = answer_question("what are users complaining about?", context, get_settings())
    assert top.text.splitlines()[:3] == [
        "*Top complaints, last 7 days:*",
        "• login: 40 reports (about 0 before)",
        "• feed: 12 reports (about 3 before)",
    ]
    assert "*Rising:* login (+4000%), feed (+300%)" in top.text

    about = answer_question("what are users complaining about in login?", context, get_settings())
    assert "User reports about 'login'" in about.text and "cannot log in after update" in about.text


@pytest.mark.parametrize(
    ("question", "tool", "args"),
    [
        ("what changed in payments in the last 1000000 days", "changes_in_service", {"service": "payments", "hours": MAX_WINDOW_HOURS}),
        ("what changed in payments in the last " + "9" * 400 + " days", "changes_in_service", {"service": "payments", "hours": MAX_WINDOW_HOURS}),
        ("what are users complaining about in the last 100000 days?", "top_complaints", {"days": MAX_WINDOW_DAYS}),
        ("did login complaints rise in the last " + "9" * 400 + " weeks?", "complaint_trend", {"category": "login", "days": MAX_WINDOW_DAYS}),
    ],
)
def test_the_router_caps_a_window_at_366_days(question: str, tool: str, args: dict[str, Any]) -> None:
    assert route(question, VOCABULARY) == (tool, args)


def _define_login(database_url: str) -> None:
    """The report category the window tests ask about (a category the store lacks is answered as unknown)."""
    from knowledge.db import session_scope
    from knowledge.reports import Category

    with session_scope(database_url) as session:
        session.add(Category(name="login", description="users cannot sign in"))


def test_a_service_with_more_changes_than_an_answer_lists_is_not_counted_as_the_list(context: AgentContext) -> None:
    """The answer listed the newest 20 changes under "*20 changes in `payments`…*", whatever the window held."""
    from dataclasses import replace
    from datetime import timedelta

    from knowledge.ingest.change_store import store_changes
    from knowledge.ingest.progress import Silent
    from tests.changes import change_record

    now = utcnow()
    busy = [change_record(f"b{n:03d}", f"payments: tweak {n}", now - timedelta(minutes=10 * n + 5), ["services/payments/api.py"],
                          services=("payments",)) for n in range(40)]  # fmt: skip
    store_changes(context.database_url, busy, Silent())
    reply = answer_question("what changed in payments in the last 24 hours", replace(context, started_at=now), get_settings())
    assert reply.text.startswith("*The 20 newest of more changes in `payments` in the last 24 h*")
    assert reply.text.count("\n• ") == 20 and "payments: tweak 0 " in reply.text
    reply = answer_question("what changed in checkout in the last 24 hours", context, get_settings())
    assert reply.text.startswith("*3 changes in `checkout` in the last 24 h*")  # all of them: a count


def test_a_window_past_366_days_is_answered_for_366_days_and_says_so(context: AgentContext) -> None:
    _define_login(context.database_url)
    reply = answer_question("what changed in checkout in the last 1000000 days", context, get_settings())
    assert reply.via == "router" and reply.rca is None
    assert reply.text.splitlines()[:2] == [CAPPED_WINDOW, f"*3 changes in `checkout` in the last {MAX_WINDOW_HOURS} h* (newest first):"]

    model = ScriptedModel(
        turns=[
            AIMessage(content="", tool_calls=[
                {"name": "changes_in_service", "args": {"service": "search", "hours": 1e300}, "id": "call-1"},
                {"name": "top_complaints", "args": {"days": 10**12}, "id": "call-2"},
                {"name": "user_complaints", "args": {"topic": "login", "days": 10**12}, "id": "call-3"},
                {"name": "complaint_trend", "args": {"category": "login", "days": 10**12}, "id": "call-4"},
                {"name": "report_rise", "args": {"category": "login", "days": 10**12}, "id": "call-5"},
            ]),
            AIMessage(content="Nothing stands out."),
        ],
        seen=[],
    )
    answer_question("anything new in search, and complaints?", context, get_settings(), model=model)
    results = {message.tool_call_id: str(message.content) for message in model.seen[1] if isinstance(message, ToolMessage)}
    assert len(results) == 5
    assert all(text.startswith(CAPPED_WINDOW + "\n") for text in results.values()), results
    assert f"in the last {MAX_WINDOW_HOURS} h" in results["call-1"]
    assert f"last {MAX_WINDOW_DAYS} days" in results["call-2"]


def test_a_window_of_zero_or_less_is_answered_for_the_shortest_window_and_says_so(context: AgentContext) -> None:
    _define_login(context.database_url)
    model = ScriptedModel(
        turns=[
            AIMessage(content="", tool_calls=[
                {"name": "changes_in_service", "args": {"service": "checkout", "hours": -1e300}, "id": "call-1"},
                {"name": "top_complaints", "args": {"days": -10**12}, "id": "call-2"},
                {"name": "user_complaints", "args": {"topic": "login", "days": 0}, "id": "call-3"},
                {"name": "complaint_trend", "args": {"category": "login", "days": -10**12}, "id": "call-4"},
                {"name": "report_rise", "args": {"category": "login", "days": -3}, "id": "call-5"},
                {"name": "changes_in_service", "args": {"service": "checkout", "hours": float("nan")}, "id": "call-6"},
            ]),
            AIMessage(content="Nothing stands out."),
        ],
        seen=[],
    )
    reply = answer_question("anything new in checkout, and complaints?", context, get_settings(), model=model)
    assert reply.via == "llm", reply.notes
    results = {message.tool_call_id: str(message.content) for message in model.seen[1] if isinstance(message, ToolMessage)}
    assert len(results) == 6
    assert all(text.startswith(SHORTEST_WINDOW + "\n") for text in results.values()), results
    assert "in the last 1 h" in results["call-1"] and "in the last 1 h" in results["call-6"]
    assert "last 1 days" in results["call-2"] and "-" not in results["call-5"].split("\n")[1]


def test_a_tool_calling_model_chooses_the_tool_and_words_the_answer(context: AgentContext) -> None:
    model = ScriptedModel(
        turns=[
            AIMessage(content="", tool_calls=[{"name": "changes_in_service", "args": {"service": "search"}, "id": "call-1"}]),
            AIMessage(content="Two search changes landed: the ranking boost is the likely suspect."),
        ],
        seen=[],
    )
    reply = answer_question("anything new in search?", context, get_settings(), model=model)
    assert reply.via == "llm"
    assert reply.text == "Two search changes landed: the ranking boost is the likely suspect."
    tool_result = model.seen[1][-1]
    assert isinstance(tool_result, ToolMessage)
    assert "tune ranking boost for new items" in tool_result.content


def test_a_model_naming_a_service_nothing_knows_is_told_so_not_that_nothing_changed(context: AgentContext) -> None:
    """``changes_in_service`` answered "No changes landed in `ledgr-svc`" for a name no catalog service or
    repository has: a model's made-up service read as a quiet one in the middle of an incident."""
    model = ScriptedModel(
        turns=[
            AIMessage(content="", tool_calls=[
                {"name": "changes_in_service", "args": {"service": "paymnts-svc"}, "id": "call-1"},
                {"name": "changes_in_service", "args": {"service": "ledger" * 20_000}, "id": "call-2"},
                {"name": "changes_in_service", "args": {"service": "shop"}, "id": "call-3"},  # a repository
            ]),
            AIMessage(content="Nothing stands out."),
        ],
        seen=[],
    )
    answer_question("anything new in payments?", context, get_settings(), model=model)
    results = {message.tool_call_id: str(message.content) for message in model.seen[1] if isinstance(message, ToolMessage)}
    assert results["call-1"].startswith("No service `paymnts-svc` in the catalog") and "`payments`" in results["call-1"]
    assert results["call-2"].startswith("No service `ledgerledger") and len(results["call-2"]) < 400
    assert results["call-3"].startswith("*11 changes in `shop` in the last 48 h*")


def test_a_failing_model_falls_back_to_a_plain_rca(context: AgentContext) -> None:
    asked: list[IncidentQuery] = []

    def investigate(query: IncidentQuery) -> RcaAnswer:  # a stand-in: this test is about the fallback, not the RCA
        asked.append(query)
        return RcaAnswer(incident=query, confident=False, confidence=0.1, suggestions=[], strongest_signals=["none"])

    from dataclasses import replace

    reply = answer_question(
        "payments are timing out", replace(context, investigate=investigate, service="payments"), get_settings(),
        model=BrokenModel(turns=[], seen=[]),
    )
    assert reply.via == "fallback"
    assert asked[0].text == "payments are timing out" and asked[0].service == "payments"
    assert "ConnectionError" in reply.rca.notes[-1]
    assert reply.text.startswith("Not confident enough (10%)")


def test_an_agent_failing_on_the_database_is_logged_without_the_values_it_sent(
    context: AgentContext, postgres_url: str
) -> None:
    """The failure was logged with repr(error): PostgreSQL's refusal repeats the row, SQLAlchemy's the
    parameters, so a tool whose write was refused put a person's name in the log."""
    from dataclasses import replace

    from structlog.processors import format_exc_info
    from structlog.testing import capture_logs

    from tests.refused_writes import REFUSED, naming_the_person, refusing_table, write_the_person

    asked: list[IncidentQuery] = []

    def investigate(query: IncidentQuery) -> RcaAnswer:  # the agent's RCA stores its answer: that write is refused
        asked.append(query)
        if len(asked) == 1:
            write_the_person(postgres_url)
        return RcaAnswer(incident=query, confident=False, confidence=0.1, suggestions=[], strongest_signals=["none"])

    refusing_table(postgres_url)
    with capture_logs(processors=[format_exc_info]) as logs:  # tracebacks rendered, as in production
        reply = answer_question("checkout is throwing 502s", replace(context, investigate=investigate), get_settings())
    assert reply.via == "fallback" and "IntegrityError" in reply.rca.notes[-1]
    assert naming_the_person(logs) == []
    [failed] = [entry for entry in logs if entry["event"] == "agent failed; falling back to a plain RCA"]
    assert failed["error"] == REFUSED


def test_a_thread_memory_the_database_refuses_is_logged_without_the_refused_row(
    context: AgentContext, postgres_url: str
) -> None:
    """The thread memory's checkpointer writes with psycopg itself: its error was not taken for a database error
    and was logged with its traceback, which ends in PostgreSQL's message repeating the refused row."""
    from dataclasses import replace

    from sqlalchemy import text as sql
    from structlog.processors import format_exc_info
    from structlog.testing import capture_logs

    from graph.memory import open_saver
    from knowledge.db import get_engine, migrate

    def investigate(query: IncidentQuery) -> RcaAnswer:  # a stand-in: this test is about the memory's failure
        return RcaAnswer(incident=query, confident=False, confidence=0.1, suggestions=[], strongest_signals=["none"])

    migrate(postgres_url)
    with open_saver(postgres_url):  # its tables, then a refusal of every checkpoint's messages
        pass
    with get_engine(postgres_url).begin() as connection:
        connection.execute(sql("ALTER TABLE checkpoint_blobs ADD CONSTRAINT refuses_memory CHECK (false)"))
    in_thread = replace(context, investigate=investigate, database_url=postgres_url, channel="CINC1", thread_ts="1714556400.000100")
    with capture_logs(processors=[format_exc_info]) as logs:  # tracebacks rendered, as in production
        reply = answer_question("checkout is throwing 502s", in_thread, get_settings())
    assert reply.via == "fallback"
    assert not [entry for entry in logs if "Failing row" in str(entry)]
    [failed] = [entry for entry in logs if entry["event"] == "agent failed; falling back to a plain RCA"]
    assert failed["error"] == "psycopg.errors.CheckViolation, SQLSTATE 23514"


@pytest.fixture
def indexed_wiki(data_dir: Path, tmp_path: Path) -> Iterator[None]:
    from chromadb.api.shared_system_client import SharedSystemClient

    from knowledge.wiki.indexing import index_wiki
    from knowledge.wiki.store import configured_wiki

    root = tmp_path / "wiki"
    (root / "runbooks").mkdir(parents=True)
    (root / "runbooks" / "payments.md").write_text(
        "# Payments runbook\n\n## Card payments return 502\n\nCheck the tokenizer client and roll back the last deploy.\n"
    )
    index_wiki(root, configured_wiki(get_settings()))
    yield
    SharedSystemClient.clear_system_cache()


def test_the_wiki_tool_finds_the_runbook(context: AgentContext, indexed_wiki: None) -> None:
    reply = answer_question("runbook for card payments 502", context, get_settings())
    assert "*Wiki pages for*" in reply.text
    assert "runbooks/payments.md" in reply.text


@pytest.mark.vllm
def test_against_a_real_vllm_server_the_agent_still_answers(context: AgentContext, vllm_server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny random model says nonsense: the request shape (tools, tool choice) must be accepted
    and whatever comes back, the responder gets an answer: the model's words or a plain RCA."""
    monkeypatch.setenv("CULPRIT_LLM_BASE_URL", vllm_server.base_url)
    monkeypatch.setenv("CULPRIT_LLM_MODEL", vllm_server.model)
    get_settings.cache_clear()
    settings = get_settings()
    from graph.llm import make_chat_model

    reply = answer_question("card payments fail with 502", context, settings, model=make_chat_model(settings, max_tokens=48))
    assert reply.text.strip()
    assert reply.via in {"llm", "fallback"}
    if reply.via == "fallback":
        assert isinstance(reply.rca, RcaAnswer)
        assert "payments: " in reply.text  # the plain RCA names the payments changes


@pytest.mark.vllm
def test_against_a_real_vllm_server_a_thread_follow_up_carries_the_earlier_turn(
    context: AgentContext, vllm_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads that remember, for the protocol: the second mention of a thread is sent to vLLM with the
    first question and the model's first answer (read back from the checkpoint) ahead of it, and is answered."""
    from dataclasses import replace

    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.messages import HumanMessage

    from graph.llm import make_chat_model

    class Requests(BaseCallbackHandler):
        sent: list[list[BaseMessage]] = []

        def on_chat_model_start(self, serialized: Any, messages: list[list[BaseMessage]], **kwargs: Any) -> None:
            self.sent.append(list(messages[0]))

    monkeypatch.setenv("CULPRIT_LLM_BASE_URL", vllm_server.base_url)
    monkeypatch.setenv("CULPRIT_LLM_MODEL", vllm_server.model)
    get_settings.cache_clear()
    settings = get_settings()
    requests = Requests()
    model = make_chat_model(settings, max_tokens=48, model_kwargs={"tool_choice": "none"}, callbacks=[requests])
    thread = replace(context, channel="CINC1", thread_ts="1700000000.000200")
    first = answer_question("what changed in payments in the last 6 hours?", thread, settings, model=model)
    second = answer_question("and in checkout?", thread, settings, model=model)
    assert first.via == second.via == "llm" and second.text.strip()
    last = [(type(m).__name__, str(m.content).strip()) for m in requests.sent[-1] if isinstance(m, (HumanMessage, AIMessage))]
    assert last == [("HumanMessage", "what changed in payments in the last 6 hours?"), ("AIMessage", first.text),
                    ("HumanMessage", "and in checkout?")]  # fmt: skip
