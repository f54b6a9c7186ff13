"""The tools responders ask for, answered by the router on a real store: owners, dependencies, "why #N?", menu."""

from __future__ import annotations

from dataclasses import replace

import pytest

from graph.agent import answer_question
from graph.agent_tools import AgentContext
from knowledge.config import get_settings
from knowledge.db import session_scope, utcnow
from knowledge.incidents import Incident, Suggestion
from knowledge.ownership import OwnershipRule
from tests.bot.conftest import SEEDED_CHANGES, seed_changes
from tools.rca.answers import IncidentQuery, RcaAnswer


def _unused_rca(query: IncidentQuery) -> RcaAnswer:
    raise AssertionError(f"these questions need no RCA, yet one ran for {query.text!r}")


@pytest.fixture
def context(database_url: str) -> AgentContext:
    from knowledge.db import migrate

    migrate(database_url)
    seed_changes(database_url, utcnow())
    with session_scope(database_url) as session:
        session.add_all([
            OwnershipRule(source="CODEOWNERS", position=0, pattern="/services/payments/", owners=["@shop/payments-team"]),
            OwnershipRule(source="CODEOWNERS", position=1, pattern="/services/payments/config/", owners=["@shop/sre"]),
        ])  # fmt: skip
    return AgentContext(
        started_at=utcnow(), database_url=database_url, investigate=_unused_rca, wiki=lambda: None,  # type: ignore[arg-type,return-value]
        channel="CINC1", thread_ts="1700000000.000100",
    )  # fmt: skip


def _ask(question: str, context: AgentContext) -> str:
    reply = answer_question(question, context, get_settings())
    assert reply.via == "router" and reply.rca is None
    return reply.text


def test_owners_of_a_service_and_of_a_path_and_a_typo(context: AgentContext) -> None:
    service = _ask("who is on call for *paymnets*?", context)
    assert "owning team: *team-payments*; on-call: page the *team-payments on-call*" in service
    assert "code owners: @shop/payments-team" in service
    path = _ask("who owns services/payments/config/gateway.yaml", context)
    assert "(service `payments`)" in path and "code owners: @shop/sre" in path
    assert "@shop/payments-team" not in path  # the later, more specific rule wins
    unknown = _ask("who owns the ledger?", context)
    assert unknown.startswith("I'm not sure what you're asking")  # not a catalog service: the menu, not an RCA


def test_dependencies_both_ways(context: AgentContext) -> None:
    text = _ask("what depends on payments?", context)
    assert "• depends on: nothing in the catalog" in text and "• dependants (depend on it): `checkout`" in text
    assert "• depends on: `payments`" in _ask("checkout dependencies", context)


def test_why_n_reads_the_threads_stored_answer(context: AgentContext) -> None:
    assert _ask("why #2?", context) == "This thread has no answer with suggestions yet; ask me what broke first."
    ids = _seeded_ids(context.database_url)
    with session_scope(context.database_url) as session:
        incident = Incident(id="slack-1", started_at=utcnow(), channel="CINC1", thread_ts=context.thread_ts)
        incident.suggestions = [
            Suggestion(change_id=ids[rank], rank=rank + 1, score=1.0 - rank / 10, confidence=0.6 - rank / 10,
                       evidence={"sentences": [f"evidence for rank {rank + 1}"], "owners": ["team-payments"],
                                 "minutes_before_incident": 42.0})
            for rank in range(3)
        ]  # fmt: skip
        session.add(incident)
    text = _ask("<@U123> why #2", context)
    assert text.startswith(f"*#2: {SEEDED_CHANGES[1][1]}* [`{ids[1][:10]}`]")
    assert "• evidence for rank 2" in text and "42 min before the incident" in text
    assert _ask("tell me about the first one", context).startswith(f"*#1: {SEEDED_CHANGES[0][1]}*")
    assert _ask("why #5?", context) == "The answer in this thread has 3 suggestion(s); there is no #5."
    assert _ask("why #0?", context) == "The answer in this thread has 3 suggestion(s); there is no #0."
    elsewhere = replace(context, thread_ts="1700000000.000999")
    assert _ask("why #2?", elsewhere).startswith("This thread has no answer")


def _seeded_ids(url: str) -> list[str]:
    from sqlalchemy import select

    from knowledge.changes import Change

    titles = [title for _service, title, _path, _hours in SEEDED_CHANGES]
    with session_scope(url) as session:
        by_title = {change.title: change.id for change in session.scalars(select(Change))}
    return [by_title[title] for title in titles]


def test_questions_it_cannot_place_get_the_menu(context: AgentContext) -> None:
    text = _ask("can you write me a poem?", context)
    assert text.startswith("I'm not sure what you're asking. I can answer:")
    assert "`who owns auth?`" in text and "`why #2?`" in text  # examples from this store's catalog
