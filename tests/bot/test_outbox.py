"""Answers Slack refuses after the client's retries wait in the outbox and are posted once it recovers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from bot.app import web_client
from bot.outbox import send_unsent_replies
from knowledge.db import session_scope, utcnow
from knowledge.incidents import Incident
from knowledge.outbox import PendingReply, UnsentReply, due_replies
from tests.bot.conftest import INCIDENT_CHANNEL, Bot, StartBot, seed_changes
from tests.rca.test_answers import PERSONAL, PERSONAL_PARTS, stored_text
from tests.waiting import wait_until

REFUSALS_PER_CALL = 4  # the first try and the Web client's 3 retries on 429


def _kept(url: str, timeout: float = 120.0) -> list[PendingReply]:
    """Block until the outbox holds a reply; fail loudly otherwise."""
    return wait_until(lambda: due_replies(url), "no reply was kept in the outbox", timeout)


def test_a_refused_answer_is_kept_then_posted_exactly_once_when_slack_recovers(store: str, start_bot: StartBot) -> None:
    _refused_then_recovered(start_bot(store), store)


@pytest.mark.postgres
def test_the_outbox_on_postgresql(postgres_url: str, data_dir, start_bot: StartBot) -> None:
    from knowledge.db import migrate, utcnow
    from tests.bot.conftest import seed_changes

    migrate(postgres_url)
    seed_changes(postgres_url, utcnow())
    _refused_then_recovered(start_bot(postgres_url), postgres_url)


def _refused_then_recovered(bot: Bot, store: str) -> None:
    bot.slack.rate_limited["chat.postMessage"] = 2 * REFUSALS_PER_CALL  # the answer, then the first resend
    assert bot.send.command("card payments fail at checkout with 502 service:payments").status_code == 200

    [kept] = _kept(store)
    assert kept.channel == INCIDENT_CHANNEL and kept.text.startswith("Likely culprits for: card payments")
    assert bot.posted() == [] and len(bot.slack.calls_to("rate_limited:chat.postMessage")) == REFUSALS_PER_CALL
    with session_scope(store) as session:
        stored = repr([(row.__dict__) for row in session.scalars(select(UnsentReply))])
    assert "xoxb-" not in stored and "/response/" not in stored and "ratelimited" in stored

    client = web_client(bot.settings)
    assert send_unsent_replies(client, store) == 0  # Slack still refuses: kept for the next run
    assert [reply.attempts for reply in due_replies(store)] == [2]

    # Slack takes calls again; two replicas' schedulers fire at once.
    with ThreadPoolExecutor(max_workers=2) as replicas:
        delivered = sorted(replicas.map(lambda _: send_unsent_replies(client, store), range(2)))
    assert delivered == [0, 1]
    assert send_unsent_replies(client, store) == 0 and due_replies(store) == []

    [answer] = bot.posted()
    assert answer.args["text"] == kept.text and answer.args["blocks"] == kept.blocks
    with session_scope(store) as session:  # votes count on the answer where it was finally posted
        incident = session.scalars(select(Incident)).one()
        assert (incident.channel, incident.thread_ts) == (INCIDENT_CHANNEL, answer.response["ts"])


def test_a_kept_answer_quotes_the_incident_without_its_e_mail_and_phone(database_url: str, start_bot: StartBot) -> None:
    """The answer quotes the incident as sent; the outbox keeps it as the incidents table does, redacted."""
    seed_changes(database_url, utcnow())
    bot = start_bot(database_url)
    bot.slack.rate_limited["chat.postMessage"] = REFUSALS_PER_CALL
    assert bot.send.command(f"card payments fail at checkout with 502, {PERSONAL} service:payments").status_code == 200

    [kept] = _kept(database_url)
    assert kept.text.startswith(
        "Likely culprits for: card payments fail at checkout with 502, paged [email], call [phone]"
    )
    stored = stored_text(database_url)
    assert "Likely culprits" in stored and not [part for part in PERSONAL_PARTS if part in stored]

    assert send_unsent_replies(web_client(bot.settings), database_url) == 1
    [answer] = bot.posted()
    assert answer.args["blocks"] == kept.blocks
    assert any(block.get("type") == "actions" for block in kept.blocks)  # its culprits can still be voted on


def test_an_answer_slack_refuses_for_good_is_given_up(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    bot.slack.rate_limited["chat.postMessage"] = REFUSALS_PER_CALL
    bot.send.command("checkout is down", channel="CGONE", channel_name="gone")
    _kept(store)
    bot.slack.not_in_channels.add("CGONE")  # the bot was removed from the channel meanwhile

    assert send_unsent_replies(web_client(bot.settings), store) == 0
    assert due_replies(store) == []
    assert [call.response["error"] for call in bot.posted()] == ["not_in_channel"]
    with session_scope(store) as session:
        assert session.scalars(select(UnsentReply.last_error)).one() == "not_in_channel"
