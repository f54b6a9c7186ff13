"""👍 / 👎 clicks over real HTTP: stored per user, shown on the message; one 👍 confirms nothing, two agreeing do."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from bot.listeners import actions

from knowledge.db import session_scope
from knowledge.incidents import Feedback, RootCause, Suggestion
from tests.bot.conftest import INCIDENT_CHANNEL, QUIET_CHANNEL, Bot, StartBot, raising
from tests.waiting import wait_until


def _answered(bot: Bot) -> dict:
    call = bot.slack.wait_for(lambda c: c.method == "chat.postMessage" and c.args.get("blocks"))[0]
    message = {"ts": call.response["ts"], "text": call.args["text"], "blocks": call.args["blocks"], "type": "message"}
    _wait_until_placed(bot.database_url, int(_first_suggestion_id(message)))
    return message


def _wait_until_placed(database_url: str, suggestion_id: int, timeout: float = 30.0) -> None:
    """The bot records where it posted an answer just after Slack confirms the post: wait for that record."""

    def placed() -> bool:
        with session_scope(database_url) as session:
            incident = session.get(Suggestion, suggestion_id).incident
            return bool(incident.channel and incident.thread_ts)

    wait_until(placed, f"the answer with suggestion {suggestion_id} was never recorded as posted", timeout)


def _first_suggestion_id(message: dict) -> str:
    return next(block for block in message["blocks"] if block["type"] == "actions")["elements"][0]["value"]


def _click_and_wait(bot: Bot, action_id: str, value: str, user: str, message: dict, count: int):
    response = bot.send.click(action_id, value, user=user, channel=INCIDENT_CHANNEL, message=message)
    assert response.status_code == 200
    return bot.slack.wait_for(lambda c: c.method == "chat.update", count=count)[count - 1]


def _votes(database_url: str, suggestion_id: int) -> list[tuple[str, int]]:
    with session_scope(database_url) as session:
        rows = session.scalars(select(Feedback).where(Feedback.suggestion_id == suggestion_id)).all()
        return sorted((row.user_id, row.vote) for row in rows)


def _root_causes(database_url: str) -> list[tuple[str, str, str | None]]:
    with session_scope(database_url) as session:
        return [(row.change_id, row.source, row.confirmed_by) for row in session.scalars(select(RootCause))]


def _feedback_story(bot: Bot) -> None:
    bot.send.command("card payments fail at checkout service:payments")
    message = _answered(bot)
    value = _first_suggestion_id(message)
    suggestion_id = int(value)
    with session_scope(bot.database_url) as session:
        change_id = session.get(Suggestion, suggestion_id).change_id

    update = _click_and_wait(bot, "feedback_up", value, "UALICE", message, 1)
    assert update.args["ts"] == message["ts"]
    assert update.args["text"] == message["text"]
    votes_line = next(b for b in update.args["blocks"] if b.get("block_id") == f"votes-{value}")
    assert votes_line["elements"][0]["text"].startswith("👍 1 · 👎 0 — <@UALICE> marked this as the root cause")
    position = [b.get("block_id") for b in update.args["blocks"]].index(f"votes-{value}")
    assert update.args["blocks"][position - 1]["block_id"] == f"feedback-{value}"
    assert _votes(bot.database_url, suggestion_id) == [("UALICE", 1)]
    assert _root_causes(bot.database_url) == []  # one click is an opinion, never a label

    # Alice changes her mind: still one vote of hers.
    message["blocks"] = update.args["blocks"]
    update = _click_and_wait(bot, "feedback_down", value, "UALICE", message, 2)
    assert _votes(bot.database_url, suggestion_id) == [("UALICE", -1)]
    assert _root_causes(bot.database_url) == []
    lines = [b for b in update.args["blocks"] if b.get("block_id") == f"votes-{value}"]
    assert len(lines) == 1 and "👍 0 · 👎 1 — <@UALICE> says this is not it" in lines[0]["elements"][0]["text"]

    # Bob says it is: with Alice's 👎 standing, nothing is confirmed.
    message["blocks"] = update.args["blocks"]
    update = _click_and_wait(bot, "feedback_up", value, "UBOB", message, 3)
    assert _votes(bot.database_url, suggestion_id) == [("UALICE", -1), ("UBOB", 1)]
    assert _root_causes(bot.database_url) == []
    assert not any(b.get("block_id") == f"confirmed-{value}" for b in update.args["blocks"])

    # Alice agrees after all: two distinct 👍 and no 👎 confirm it, and the message says so.
    message["blocks"] = update.args["blocks"]
    update = _click_and_wait(bot, "feedback_up", value, "UALICE", message, 4)
    assert _root_causes(bot.database_url) == [(change_id, "votes", "UALICE,UBOB")]
    confirmed = next(b for b in update.args["blocks"] if b.get("block_id") == f"confirmed-{value}")
    assert confirmed["text"]["text"].startswith("✅ Confirmed as the root cause")


def test_votes_are_stored_per_user_and_shown_on_the_message(store: str, start_bot: StartBot) -> None:
    _feedback_story(start_bot(store))


def test_votes_on_postgresql(postgres_url: str, data_dir, start_bot: StartBot) -> None:
    from knowledge.db import migrate
    from knowledge.db import utcnow
    from tests.bot.conftest import seed_changes

    migrate(postgres_url)
    seed_changes(postgres_url, utcnow())
    _feedback_story(start_bot(postgres_url))


def test_a_vote_on_a_vanished_suggestion_is_answered_kindly(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    message = {"ts": "1.000001", "text": "old answer", "blocks": [], "type": "message"}
    bot.send.click("feedback_up", "999999", user="UALICE", channel=INCIDENT_CHANNEL, message=message)
    notice = bot.slack.wait_for(lambda c: c.method == "chat.postEphemeral")[0]
    assert "couldn't store your vote: no suggestion 999999" in notice.args["text"]
    assert bot.slack.calls_to("chat.update") == []


def test_a_vote_counts_only_in_the_message_and_channel_that_showed_the_suggestion(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    bot.send.command("card payments fail at checkout service:payments")
    message = _answered(bot)
    value = _first_suggestion_id(message)
    bot.send.click("feedback_up", value, user="UALICE", channel=INCIDENT_CHANNEL, message={**message, "ts": "1.000001"})
    bot.send.click("feedback_up", value, user="UALICE", channel=QUIET_CHANNEL, message=message)
    notices = bot.slack.wait_for(lambda c: c.method == "chat.postEphemeral", count=2)
    assert all(f"suggestion {value} was not posted in this message" in n.args["text"] for n in notices)
    assert _votes(bot.database_url, int(value)) == []
    assert bot.slack.calls_to("chat.update") == []


def test_button_values_that_are_no_suggestion_id_get_a_clear_answer(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    message = {"ts": "1.000001", "text": "old answer", "blocks": [], "type": "message"}
    values = ["abc", "1_1", "9" * 30, "-3", " 7"]
    for value in values:
        assert bot.send.click("feedback_up", value, user="UALICE", channel=INCIDENT_CHANNEL, message=message).status_code == 200
    notices = bot.slack.wait_for(lambda c: c.method == "chat.postEphemeral", count=len(values))
    assert all("is not a suggestion id" in n.args["text"] for n in notices)
    assert not any("database" in n.args["text"] for n in notices)
    assert bot.slack.calls_to("chat.update") == []


def test_a_vote_on_an_answer_in_a_mention_thread_counts(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    _, thread_ts = bot.send.mention("card payments fail with 502 since the last deploy service:payments")
    answer = bot.slack.wait_for(lambda c: c.method == "chat.update")[0]
    message = {"ts": answer.args["ts"], "thread_ts": thread_ts, "text": answer.args["text"], "blocks": answer.args["blocks"], "type": "message"}
    value = _first_suggestion_id(message)
    _wait_until_placed(bot.database_url, int(value))
    update = _click_and_wait(bot, "feedback_up", value, "UALICE", message, 2)
    assert update.args["ts"] == message["ts"]
    assert _votes(bot.database_url, int(value)) == [("UALICE", 1)]


def test_a_vote_that_fails_unexpectedly_tells_the_clicker_and_logs_the_error_once(
    store: str, start_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in storing a vote used to end in a traceback and nothing for the responder who clicked."""
    monkeypatch.setattr(actions, "record_vote", raising(RuntimeError("a bug while storing")))
    bot = start_bot(store)
    message = {"ts": "1.000001", "text": "old answer", "blocks": [], "type": "message"}
    with capture_logs() as logs:
        assert bot.send.click("feedback_up", "7", user="UALICE", channel=INCIDENT_CHANNEL, message=message).status_code == 200
        notice = bot.slack.wait_for(lambda c: c.method == "chat.postEphemeral")[0]
    assert notice.args["user"] == "UALICE" and notice.args["channel"] == INCIDENT_CHANNEL
    assert "couldn't store your vote: the click failed (RuntimeError)" in notice.args["text"]
    failures = [entry for entry in logs if entry["event"] == "vote not stored"]
    assert len(failures) == 1 and failures[0]["error_type"] == "RuntimeError" and failures[0]["log_level"] == "error"
    assert bot.slack.calls_to("chat.update") == []
