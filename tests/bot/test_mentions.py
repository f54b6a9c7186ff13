"""@culprit in incident channels: the agent answers in the thread, elsewhere a hint; retries answered once."""

from __future__ import annotations

from knowledge.db import migrate, utcnow
from tests.bot.conftest import INCIDENT_CHANNEL, QUIET_CHANNEL, StartBot, seed_changes
from tests.bot.fake_slack import BOT_ID


def _final_update(bot, channel: str = INCIDENT_CHANNEL):
    return bot.slack.wait_for(lambda call: call.method == "chat.update" and call.args.get("channel") == channel)[0]


def test_a_mention_in_an_incident_channel_is_answered_in_its_thread(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    response, ts = bot.send.mention("card payments fail with 502 since the last deploy service:payments")
    assert response.status_code == 200

    placeholder = bot.slack.wait_for(lambda call: call.method == "chat.postMessage")[0]
    assert placeholder.args["thread_ts"] == ts
    assert placeholder.args["channel"] == INCIDENT_CHANNEL
    update = _final_update(bot)
    blocks = update.args["blocks"]
    assert blocks[0]["type"] == "header"
    assert sum(block["type"] == "actions" for block in blocks) == 5
    assert "card payments fail with 502" in str(blocks)
    assert bot.posted("conversations.info", channel=INCIDENT_CHANNEL)


def test_recent_changes_question_lists_the_services_changes(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    bot.send.mention("what are the recent changes in payments?")
    text = _final_update(bot).args["text"]
    assert "3 changes in `payments`" in text
    assert "switch card tokenizer to the v2 client" in text
    assert "search:" not in text

    # The channel name is looked up once and remembered.
    bot.send.mention("what changed in search in the last 10 hours")
    bot.slack.wait_for(lambda call: call.method == "chat.update", count=2)
    assert len(bot.posted("conversations.info")) == 1
    assert "tune ranking boost" in bot.slack.calls_to("chat.update")[1].args["text"]


def test_channels_listed_in_config_count_as_incident_channels(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store, env={"CULPRIT_INCIDENT_CHANNELS": '["general"]'})
    bot.send.mention("what changed in auth", channel=QUIET_CHANNEL)
    assert "rotate session signing keys" in _final_update(bot, QUIET_CHANNEL).args["text"]


def test_outside_incident_channels_the_bot_only_hints(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    bot.send.mention("why is checkout down", channel=QUIET_CHANNEL)
    hint = bot.slack.wait_for(lambda call: call.method == "chat.postEphemeral")[0]
    assert hint.args["user"] == "UALICE"
    assert "inc-*" in hint.args["text"]
    # The hint is the listener's last act for a mention outside incident channels: nothing else can follow.
    assert bot.posted() == []


def test_a_retried_event_is_answered_once(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    duplicates = bot.dropped("duplicate")
    first, ts = bot.send.mention("what changed in feed", event_id="EvRETRIED1")
    event = {
        "type": "app_mention",
        "user": "UALICE",
        "text": "<@UCULPRIT> what changed in feed",
        "ts": ts,
        "channel": INCIDENT_CHANNEL,
        "event_ts": ts,
    }
    retries = [bot.send.event(event, event_id="EvRETRIED1", retry_num=n) for n in (1, 2)]
    assert [r.status_code for r in (first, *retries)] == [200, 200, 200]
    bot.wait_until_dropped("duplicate", duplicates + 2)
    _final_update(bot)
    assert len(bot.posted()) == 1
    assert len(bot.slack.calls_to("chat.update")) == 1


def test_messages_from_bots_are_ignored(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    from_bots = bot.dropped("bot")
    bot.send.mention("what changed in feed", extra={"bot_id": "BOTHER", "user": "UOTHERBOT"})
    bot.send.mention("what changed in feed", extra={"bot_id": BOT_ID, "user": "UCULPRIT"})
    bot.send.mention("what changed in feed", extra={"user": "UCULPRIT"})  # ourselves, without a bot_id
    bot.send.mention("what changed in feed", extra={"bot_id": "BHOOK", "user": None})  # a webhook's: no user
    bot.wait_until_dropped("bot", from_bots + 4)
    assert bot.slack.calls_to("chat.postMessage") == []
    assert bot.slack.calls_to("chat.update") == []


def test_a_mention_whose_text_no_database_stores_is_answered_with_the_fix(database_url: str, start_bot: StartBot) -> None:
    """A NUL (PostgreSQL) or a lone surrogate (any database) failed the investigation where it stored the incident;
    the thread was told the database could not be reached, or that the investigation failed."""
    migrate(database_url)
    seed_changes(database_url, utcnow())
    bot = start_bot(database_url)
    for number, text in enumerate(["checkout \x00 fails since the deploy", "checkout \ud800 fails since the deploy"]):
        _, ts = bot.send.mention(text)
        told = bot.slack.wait_for(lambda call, ts=ts: call.method == "chat.postMessage" and call.args.get("thread_ts") == ts)[0]
        assert "the description holds a" in told.args["text"] and "remove it and ask again" in told.args["text"], number
    assert bot.slack.calls_to("chat.update") == []  # no investigation started, so no placeholder replaced
