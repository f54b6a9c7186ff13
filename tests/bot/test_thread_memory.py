"""Threads that remember (issue 13 item 2): follow-up mentions answered with the thread's earlier exchange.

The conversation is LangGraph's checkpoint of the thread (``channel:thread_ts``) in culprit's own
database, SQLite and PostgreSQL; the nightly purge forgets threads older than the retention period.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from structlog.testing import capture_logs

from graph.agent import answer_question
from graph.agent_tools import AgentContext
from graph.memory import forget_old_threads, open_saver, thread_id
from graph.router import MENU, Route, Vocabulary, follow_up
from knowledge.changes import Change
from knowledge.config import Settings
from knowledge.db import migrate, session_scope, utcnow
from knowledge.incidents import Incident, Suggestion
from tests.bot.conftest import INCIDENT_CHANNEL, StartBot
from tests.bot.silent_database import SilentDatabase
from tests.bot.test_agent import ScriptedModel
from tests.rca.test_answers import PERSONAL, PERSONAL_PARTS, stored_text
from tests.waiting import wait_until
from tools.rca.answers import RcaAnswer

AT = "at:2025-03-20T10:00Z"
SERVICES = Vocabulary(services=("checkout", "payments", "search"), categories=("login", "crash"))


def test_a_follow_up_without_a_subject_takes_it_from_the_earlier_route() -> None:
    changes = Route("changes_in_service", {"service": "checkout", "hours": 6.0})
    assert follow_up("and in payments?", SERVICES, changes) == Route("changes_in_service", {"service": "payments", "hours": 6.0})
    assert follow_up("what about the last 2 hours?", SERVICES, changes) == Route("changes_in_service", {"service": "checkout", "hours": 2.0})
    owners = Route("service_owners", {"target": "payments"})
    assert follow_up("show me the changes in the last 2 hours", SERVICES, owners) == Route(
        "changes_in_service", {"service": "payments", "hours": 2.0}
    )
    rca = Route("investigate_incident", {"symptom": "card charges time out"})
    assert follow_up("and in payments?", SERVICES, rca) == Route(
        "investigate_incident", {"symptom": "card charges time out", "service": "payments"}
    )
    complaints = Route("user_complaints", {"topic": "crash", "days": 7})
    assert follow_up("and login over the last 2 days?", SERVICES, complaints) == Route(
        "user_complaints", {"topic": "login", "days": 2}
    )
    assert follow_up("what about the config change?", SERVICES, rca) == Route("suggestion_details", {"about": "config"})
    assert follow_up("who's on call for it?", SERVICES, changes) == Route("service_owners", {"target": "checkout"})
    # Nothing to carry over: a question of its own, or none at all, is routed as before.
    assert follow_up("who owns search?", SERVICES, changes) == Route("service_owners", {"target": "search"})
    assert follow_up("who owns the ledger?", SERVICES, changes).tool == MENU  # another subject, not in the catalog
    assert follow_up("and in payments?", SERVICES, None).tool == MENU
    assert follow_up("hmm", SERVICES, changes).tool == MENU


def _context(url: str, thread_ts: str) -> AgentContext:
    def investigate(query: Any) -> Any:
        raise AssertionError("no RCA is asked for in this conversation")

    def wiki() -> Any:
        raise AssertionError("no wiki search is asked for in this conversation")

    return AgentContext(
        started_at=utcnow(), database_url=url, investigate=investigate, wiki=wiki,
        channel=INCIDENT_CHANNEL, thread_ts=thread_ts,
    )  # fmt: skip


def test_the_chat_model_reads_the_threads_earlier_turns_and_old_threads_are_forgotten(
    database_url: str, data_dir: Path
) -> None:
    settings = Settings(data_dir=data_dir, database_url=database_url)
    model = ScriptedModel(
        turns=[AIMessage("Checkout had 3 changes."), AIMessage("The config change was #2."), AIMessage("Other thread."),
               AIMessage("Fresh start.")],
        seen=[],
    )  # fmt: skip
    first = answer_question("what changed in checkout?", _context(database_url, "100.1"), settings, model=model)
    second = answer_question("what about the config change?", _context(database_url, "100.1"), settings, model=model)
    other = answer_question("who owns search?", _context(database_url, "200.2"), settings, model=model)
    assert (first.text, second.text, other.text) == ("Checkout had 3 changes.", "The config change was #2.", "Other thread.")
    shown = [(type(m).__name__, m.content) for m in model.seen[1][1:]]  # after the system prompt
    assert shown == [("HumanMessage", "what changed in checkout?"), ("AIMessage", "Checkout had 3 changes."),
                     ("HumanMessage", "what about the config change?")]  # fmt: skip
    assert [m.content for m in model.seen[2][1:]] == ["who owns search?"]  # another thread sees none of it

    assert forget_old_threads(database_url, timedelta(days=30), now=utcnow() + timedelta(days=29)) == 0
    with open_saver(database_url) as saver:
        assert saver.get_tuple({"configurable": {"thread_id": thread_id(INCIDENT_CHANNEL, "100.1")}}) is not None
    assert forget_old_threads(database_url, timedelta(days=30), now=utcnow() + timedelta(days=31)) == 2
    with open_saver(database_url) as saver:
        assert saver.get_tuple({"configurable": {"thread_id": thread_id(INCIDENT_CHANNEL, "100.1")}}) is None
    answer_question("and in payments?", _context(database_url, "100.1"), settings, model=model)
    assert [m.content for m in model.seen[3][1:]] == ["and in payments?"]
    assert all(isinstance(m, HumanMessage) for m in model.seen[3][1:])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo_database(request: pytest.FixtureRequest, demo_files: Path, data_dir: Path) -> str:
    """The demo organisation (seed 7) loaded through the real ingestion, on SQLite and on PostgreSQL."""
    from knowledge.demo.loader import load_records
    from knowledge.ingest.progress import Silent
    from tools.rca.store import stored_words

    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'culprit.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    migrate(url)
    load_records(demo_files, url, stored_words, Silent())
    return url


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from knowledge.demo import generate_organisation, write_demo_files

    return write_demo_files(generate_organisation(7), tmp_path_factory.mktemp("demo") / "files")


def _answer(bot, count: int, timeout: float) -> str:  # type: ignore[no-untyped-def]
    updates = bot.slack.wait_for(lambda call: call.method == "chat.update", count=count, timeout=timeout)
    return str(updates[count - 1].args["text"])


def _thread_answer(url: str, thread: str, count: int, timeout: float = 60.0) -> Incident:
    """The thread's latest recorded answer once ``count`` answers are recorded (just after posting)."""

    def latest() -> Incident | None:
        with session_scope(url) as session:
            incidents = session.query(Incident).filter_by(channel=INCIDENT_CHANNEL, thread_ts=thread).all()
            return max(incidents, key=lambda incident: incident.created_at) if len(incidents) >= count else None

    return wait_until(latest, f"fewer than {count} answers were recorded for thread {thread} within {timeout}s", timeout)


def test_a_thread_of_follow_ups_is_answered_from_its_first_answer(demo_database: str, start_bot: StartBot) -> None:
    # No ranker is trained here: a lower gate shows the heuristic blend's answer; a 2-day window keeps the RCA short.
    env = {"CULPRIT_MIN_CONFIDENCE": "0.2", "CULPRIT_WINDOW_DAYS": "2"}
    bot = start_bot(demo_database, env=env, answer_timeout_s=600)
    _, thread = bot.send.mention(f"card charges time out at Stripe {AT}")
    assert "Likely culprits" in _answer(bot, 1, timeout=300)
    first = _thread_answer(demo_database, thread, 1)
    assert first.service is None
    with session_scope(demo_database) as session:
        second = session.query(Suggestion).filter_by(incident_id=first.id, rank=2).one().change_id

    # Follow-ups give no `at:`: they are about the thread's incident, not about now.
    bot.send.mention("why #2?", extra={"thread_ts": thread})
    text = _answer(bot, 2, timeout=120)
    assert text.startswith("*#2: ") and second[:10] in text

    # "what about the <words> change?": the suggestion whose title has a word no other suggestion's title has.
    with session_scope(demo_database) as session:
        titles = {
            row.rank: session.get(Change, row.change_id).title
            for row in session.query(Suggestion).filter_by(incident_id=first.id)
        }
    words = {rank: set(re.findall(r"[a-z]{4,}", title.lower())) for rank, title in titles.items()}
    rank, word = next(
        (rank, word) for rank in sorted(titles, reverse=True)
        for word in sorted(words[rank] - set().union(*(w for r, w in words.items() if r != rank)) - {"change", "about"})
    )  # fmt: skip
    bot.send.mention(f"what about the {word} change?", extra={"thread_ts": thread})
    assert _answer(bot, 3, timeout=120).startswith(f"*#{rank}: {titles[rank]}*")

    bot.send.mention("and in payments?", extra={"thread_ts": thread})
    text = _answer(bot, 4, timeout=300)
    assert "I'm not sure what you're asking" not in text
    third = _thread_answer(demo_database, thread, 2)
    assert third.id != first.id
    assert (third.service, third.text) == ("payments", first.text)  # the first question, asked of payments
    assert third.started_at == first.started_at == datetime(2025, 3, 20, 10, tzinfo=UTC)
    assert "Likely culprits" in text or "Not confident" in text


def test_a_long_thread_keeps_only_its_last_turns(database_url: str, data_dir: Path) -> None:
    from graph.agent import KEPT_TURNS

    settings = Settings(data_dir=data_dir, database_url=database_url)
    turns = KEPT_TURNS + 2
    model = ScriptedModel(turns=[AIMessage(f"answer {n}") for n in range(turns)], seen=[])
    for n in range(turns):
        answer_question(f"question {n}", _context(database_url, "300.3"), settings, model=model)
    # The model saw the last KEPT_TURNS - 1 answered turns before the current question.
    shown = [m.content for m in model.seen[-1][1:]]
    expected = [text for n in range(turns - KEPT_TURNS, turns - 1) for text in (f"question {n}", f"answer {n}")]
    assert shown == [*expected, f"question {turns - 1}"]
    thread = {"configurable": {"thread_id": thread_id(INCIDENT_CHANNEL, "300.3")}}
    with open_saver(database_url) as saver:
        latest = saver.get_tuple(thread)
        kept = list(saver.list(thread))
    assert latest is not None
    stored = [m.content for m in latest.checkpoint["channel_values"]["messages"]]
    assert stored == [text for n in range(turns - KEPT_TURNS, turns) for text in (f"question {n}", f"answer {n}")]
    # One checkpoint per thread, not one per turn ever asked: the thread's rows do not grow with its length.
    assert [checkpoint.config["configurable"]["checkpoint_id"] for checkpoint in kept] == [
        latest.config["configurable"]["checkpoint_id"]
    ]



class LoopingModel(ScriptedModel):
    """A model that asks for a tool again and again, until the turn hits the recursion limit."""

    def _generate(self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        call = {"name": "service_owners", "args": {"target": "checkout"}, "id": f"call-{len(self.seen)}"}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="", tool_calls=[call]))])


def test_turns_a_failing_model_left_half_done_do_not_pile_up_in_the_threads_memory(
    database_url: str, data_dir: Path
) -> None:
    """Only an answered turn dropped turns: each failed one stayed in the checkpoint (a mention, six tool calls
    and their results), so a thread whose model kept failing grew by every mention, unseen by any model."""
    settings = Settings(data_dir=data_dir, database_url=database_url)
    context = replace(_context(database_url, "500.5"), investigate=lambda query: RcaAnswer(
        incident=query, confident=False, confidence=0.1, suggestions=[], strongest_signals=["none"],
    ))  # fmt: skip
    thread = {"configurable": {"thread_id": thread_id(INCIDENT_CHANNEL, "500.5")}}

    def questions_kept() -> list[str]:
        with open_saver(database_url) as saver:
            latest = saver.get_tuple(thread)
        assert latest is not None
        return [str(m.content) for m in latest.checkpoint["channel_values"]["messages"] if isinstance(m, HumanMessage)]

    for n in range(3):
        looping = LoopingModel(turns=[], seen=[])
        assert answer_question(f"looping {n}", context, settings, model=looping).via == "fallback"
    assert questions_kept() == ["looping 2"]  # the failed turn itself, until the next turn drops it
    model = ScriptedModel(turns=[AIMessage("Checkout had 3 changes.")], seen=[])
    reply = answer_question("what changed in checkout?", context, settings, model=model)
    assert reply.text == "Checkout had 3 changes."
    assert [m.content for m in model.seen[0][1:]] == ["what changed in checkout?"]
    assert questions_kept() == ["what changed in checkout?"]


def test_a_threads_memory_keeps_no_e_mail_or_phone_of_a_question(database_url: str, data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir, database_url=database_url)
    model = ScriptedModel(turns=[AIMessage("Checkout had 3 changes.")], seen=[])
    answer_question(f"what changed in checkout? {PERSONAL}", _context(database_url, "400.4"), settings, model=model)
    assert [m.content for m in model.seen[0][1:]] == ["what changed in checkout? paged [email], call [phone]"]
    with open_saver(database_url) as saver:
        kept = saver.get_tuple({"configurable": {"thread_id": thread_id(INCIDENT_CHANNEL, "400.4")}})
    assert kept is not None and len(kept.checkpoint["channel_values"]["messages"]) == 2
    stored = stored_text(database_url)
    assert "checkout" in stored and not [part for part in PERSONAL_PARTS if part in stored]


class HeldModel(ScriptedModel):
    """A scripted model whose first answer waits until the test lets it go."""

    gate: Any = None

    def _generate(self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        result = super()._generate(messages, stop, run_manager, **kwargs)
        if len(self.seen) == 1:
            assert self.gate.wait(timeout=60), "the test never let the first turn go"
        return result


def test_two_mentions_in_one_thread_at_once_both_stay_in_its_memory(database_url: str, data_dir: Path) -> None:
    """The second turn waits for the first, so it sees the first exchange and neither is lost."""
    settings = Settings(data_dir=data_dir, database_url=database_url)
    gate = threading.Event()
    model = HeldModel(turns=[AIMessage("Checkout had 3 changes."), AIMessage("Payments had none.")], seen=[], gate=gate)
    with ThreadPoolExecutor(max_workers=2) as pool, capture_logs() as logs:
        first = pool.submit(answer_question, "what changed in checkout?", _context(database_url, "300.3"), settings, model=model)
        wait_until(lambda: len(model.seen) == 1 or None, "the first turn never reached the model")
        second = pool.submit(answer_question, "and in payments?", _context(database_url, "300.3"), settings, model=model)
        wait_until(
            lambda: any(entry["event"] == "waiting for the thread's earlier turn" for entry in logs) or None,
            "the second turn did not wait for the first",
        )
        gate.set()
        replies = first.result(timeout=60).text, second.result(timeout=60).text
    assert replies == ("Checkout had 3 changes.", "Payments had none.")
    assert [m.content for m in model.seen[1][1:]] == ["what changed in checkout?", "Checkout had 3 changes.", "and in payments?"]
    with open_saver(database_url) as saver:
        kept = saver.get_tuple({"configurable": {"thread_id": thread_id(INCIDENT_CHANNEL, "300.3")}})
    assert [m.content for m in kept.checkpoint["channel_values"]["messages"]] == [
        "what changed in checkout?", "Checkout had 3 changes.", "and in payments?", "Payments had none.",
    ]


def test_thread_memory_gives_up_on_a_server_that_never_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkpointer opens its own connection: it carries the same connect timeout as the engine."""
    import psycopg

    monkeypatch.setattr("knowledge.db.CONNECT_TIMEOUT_S", 1)
    with SilentDatabase() as database:
        with pytest.raises(psycopg.OperationalError, match="timeout"):
            with open_saver(database.url):
                pass
        database.wait_for_connections(1)  # the timeout came from a server that took the connection, not a refusal
