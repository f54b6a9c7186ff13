"""Socket Mode end to end: the same command, mention, button and retry checks as over HTTP,
against a local WebSocket server speaking Slack's envelope; /reports stays served beside it."""

from __future__ import annotations

import httpx

from tests.bot.conftest import INCIDENT_CHANNEL, Bot, StartBot
from tests.bot.test_channels_and_jobs import _reports, _wait_for_reports
from tests.bot.test_feedback import _answered, _first_suggestion_id, _votes


def _answer(bot: Bot):
    return bot.slack.wait_for(
        lambda call: call.method == "chat.postMessage" and call.args.get("blocks"), timeout=120
    )[0]


def test_a_command_over_socket_mode_is_acked_in_the_envelope_then_answered(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store, socket_mode=True)
    assert bot.socket is not None
    envelope = bot.socket.send(
        "slash_commands", bot.send.command_payload("card payments fail at checkout with 502 service:payments")
    )

    ack = bot.socket.ack(envelope)
    assert ack["payload"]["response_type"] == "in_channel"
    assert "Investigating" in ack["payload"]["text"]
    posted = _answer(bot)
    assert posted.args["channel"] == INCIDENT_CHANNEL
    assert posted.args["text"].startswith("Likely culprits for: card payments fail at checkout with 502")
    assert bot.slack.calls_to("apps.connections.open")[0].args == {}  # the app token went as the bearer, not an arg


def test_a_mention_over_socket_mode_is_answered_in_its_thread(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store, socket_mode=True)
    assert bot.socket is not None
    event = bot.send.mention_event("what changed in payments")
    envelope = bot.socket.send("events_api", bot.send.event_envelope(event))

    assert "payload" not in bot.socket.ack(envelope)
    placeholder = bot.slack.wait_for(lambda call: call.method == "chat.postMessage")[0]
    assert placeholder.args["thread_ts"] == event["ts"]
    update = bot.slack.wait_for(lambda call: call.method == "chat.update", timeout=120)[0]
    assert update.args["ts"] == placeholder.response["ts"]
    assert "payments" in update.args["text"]


def test_a_button_over_socket_mode_stores_the_vote_and_shows_it(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store, socket_mode=True)
    assert bot.socket is not None
    bot.socket.send("slash_commands", bot.send.command_payload("card payments fail at checkout service:payments"))
    message = _answered(bot)
    value = _first_suggestion_id(message)

    click = bot.send.click_payload("feedback_up", value, user="UALICE", channel=INCIDENT_CHANNEL, message=message)
    bot.socket.ack(bot.socket.send("interactive", click))
    update = bot.slack.wait_for(lambda call: call.method == "chat.update")[0]
    votes_line = next(block for block in update.args["blocks"] if block.get("block_id") == f"votes-{value}")
    assert votes_line["elements"][0]["text"].startswith("👍 1 · 👎 0 — <@UALICE>")
    assert _votes(bot.database_url, int(value)) == [("UALICE", 1)]


def test_a_retried_envelope_is_acked_and_answered_once(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store, socket_mode=True)
    assert bot.socket is not None
    duplicates = bot.dropped("duplicate")
    event = bot.send.mention_event("what changed in feed")
    first = bot.socket.send("events_api", bot.send.event_envelope(event, "EvSOCKET1"))
    retries = [
        bot.socket.send("events_api", bot.send.event_envelope(event, "EvSOCKET1"), retry_attempt=n, retry_reason="timeout")
        for n in (1, 2)
    ]

    for envelope in (first, *retries):
        bot.socket.ack(envelope)
    bot.wait_until_dropped("duplicate", duplicates + 2)
    bot.slack.wait_for(lambda call: call.method == "chat.update", timeout=120)
    assert len(bot.posted()) == 1 and len(bot.slack.calls_to("chat.update")) == 1


def test_a_socket_mode_replica_still_takes_reports_over_http_and_classifies_them(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store, socket_mode=True, env={"CULPRIT_REPORTS_TOKEN": "s3cret-reports-token"})
    assert bot.socket is not None
    bot.socket.wait_connected()
    accepted = httpx.post(
        f"{bot.url}/reports",
        json=[{"id": "r1", "text": "the feed does not load after the update"}],
        headers={"Authorization": "Bearer s3cret-reports-token"},
        timeout=60,
    )
    assert accepted.status_code == 200, accepted.text
    [report] = _wait_for_reports(store, 1, timeout=120, classified=True)
    assert (report.source, report.category is not None) == ("http", True)
    # Slack's requests come over the socket: the HTTP route for them is not served.
    assert httpx.post(f"{bot.url}/slack/events", content=b"{}").status_code == 404
    assert httpx.get(f"{bot.url}/healthz").json()["status"] == "ok"
    assert [r.text for r in _reports(store)] == ["the feed does not load after the update"]
