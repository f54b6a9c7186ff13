"""Investigations that start themselves, end to end over HTTP with the fake Slack.

A new ``inc-*`` channel, culprit joining one, a PagerDuty trigger and a signed
``POST /incidents`` each post first suspects once; duplicated deliveries start
nothing more, forged or replayed ones nothing at all; a re-run edits the answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from structlog.testing import capture_logs

from bot.app import finish_acked_replies, runtime_of
from bot.auto_investigations import AUTO_INVESTIGATIONS, CLAIM_LEASE
from bot.http_checks import RETRY_AFTER_S
from bot.incident_webhooks import MAX_BODY_BYTES
from bot.reply_queue import ReplyQueue
from bot.runtime import RERUNS_PER_MINUTE
from knowledge.claims import Claim, is_done
from knowledge.db import get_engine, migrate, session_scope, utcnow
from knowledge.incidents import Incident, Suggestion
from tests.bot.conftest import INCIDENT_CHANNEL, Bot, StartBot, seed_changes
from tests.bot.database_outage import DatabaseOutage
from tests.bot.fake_slack import BOT_USER_ID
from tests.rca.test_answers import PERSONAL, PERSONAL_PARTS, stored_text
from tests.waiting import wait_until
from tools.feedback.confirmations import CONFIRMER, confirm_cause
from tools.rca.history.from_store import store_history

NEW_CHANNEL = "CNEWINC1"
PD_SECRET = "pd-webhook-secret"
GENERIC_SECRET = "incidents-secret"
TRIGGERED = "culprit_investigations_triggered_total"


def _answer_in(bot: Bot, channel: str, count: int = 1) -> list:
    """The chat.update calls that replaced a placeholder with an answer carrying the re-run button."""
    return bot.slack.wait_for(
        lambda c: c.method == "chat.update" and c.args.get("channel") == channel
        and any(b.get("block_id", "").startswith("rerun-") for b in c.args.get("blocks") or []),
        count=count,
        timeout=60,
    )


def _incident(bot: Bot, channel: str, timeout: float = 30.0) -> Incident:
    """The channel's investigation, once the bot has recorded where its answer is (just after posting it)."""

    def recorded() -> Incident | None:
        with session_scope(bot.database_url) as session:
            return session.query(Incident).filter(Incident.channel == channel, Incident.id.like("auto-%")).one_or_none()

    return wait_until(recorded, f"no investigation recorded in {channel}", timeout)


def _answered_new_channel(bot: Bot) -> tuple[Incident, dict]:
    """A new incident channel with its first suspects posted: its investigation, and the answer as a click carries it."""
    bot.slack.channel_names[NEW_CHANNEL] = "inc-payments-502"
    bot.send.event({"type": "channel_created", "channel": {"id": NEW_CHANNEL, "name": "inc-payments-502", "created": int(time.time())}})
    answer = _answer_in(bot, NEW_CHANNEL)[0]
    message = {"ts": answer.args["ts"], "text": answer.args["text"], "blocks": answer.args["blocks"], "type": "message"}
    return _incident(bot, NEW_CHANNEL), message


def test_a_new_incident_channel_gets_first_suspects_once_and_reruns_edit_them(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    bot.slack.channel_names[NEW_CHANNEL] = "inc-payments-502"
    bot.slack.channel_topics[NEW_CHANNEL] = "card payments fail with 502 at checkout"
    created = int(time.time())
    bot.send.event({"type": "channel_created", "channel": {"id": NEW_CHANNEL, "name": "inc-payments-502", "created": created, "creator": "UIC"}})
    placeholder = bot.slack.wait_for(lambda c: c.method == "chat.postMessage" and c.args.get("channel") == NEW_CHANNEL)[0]
    assert placeholder.args["text"].startswith("🔎 New incident: investigating _#inc-payments-502_")
    assert bot.slack.calls_to("conversations.join")[0].args["channel"] == NEW_CHANNEL
    answer = _answer_in(bot, NEW_CHANNEL)[0]
    assert answer.args["ts"] == placeholder.response["ts"]
    incident = _incident(bot, NEW_CHANNEL)
    assert incident.service == "payments" and "card payments fail with 502" in incident.text
    assert incident.thread_ts == placeholder.response["ts"]  # votes on this message count

    # culprit is then added to the channel (a second delivery about the same channel): nothing new starts.
    bot.send.event({"type": "member_joined_channel", "user": BOT_USER_ID, "channel": NEW_CHANNEL, "channel_type": "C"})
    bot.wait_for_metric(TRIGGERED, 1, outcome="duplicate")
    assert len([c for c in bot.slack.calls_to("chat.postMessage") if c.args.get("channel") == NEW_CHANNEL]) == 1

    # Responders add symptoms; the button re-ranks with them and edits the same message.
    bot.slack.channel_history[NEW_CHANNEL] = [
        {"type": "message", "user": "UBOB", "text": "tokenizer v2 client errors in the payments logs", "ts": "3.0"},
        {"type": "message", "bot_id": "BCULPRIT", "text": "🔎 New incident", "ts": "2.0"},
        {"type": "message", "user": "UALICE", "text": "declined cards retried twice", "ts": "1.0"},
    ]
    message = {"ts": answer.args["ts"], "text": answer.args["text"], "blocks": answer.args["blocks"], "type": "message"}
    bot.send.click("rerun_channel", incident.id, user="UALICE", channel=NEW_CHANNEL, message=message)
    rerun = _answer_in(bot, NEW_CHANNEL, count=2)[1]
    assert rerun.args["ts"] == answer.args["ts"]
    text = _incident(bot, NEW_CHANNEL).text
    assert text.index("declined cards retried twice") < text.index("tokenizer v2 client errors") and "🔎" not in text
    # The channel's messages came after the incident started: once its cause is confirmed, the next model
    # learns the incident as it was first described, not the suspects responders named since.
    with session_scope(store) as session:
        suspect = session.scalars(select(Suggestion.change_id).where(Suggestion.incident_id == incident.id)).first()
    confirm_cause(incident.id, suspect, "UIC", CONFIRMER, database_url=store)
    learned = next(case.incident.text for case in store_history(store).cases if case.case_id == incident.id)
    assert "card payments fail with 502" in learned and "tokenizer v2" not in learned and "declined cards" not in learned

    bot.send.mention("again", channel=NEW_CHANNEL)
    again = _answer_in(bot, NEW_CHANNEL, count=3)[2]
    assert again.args["ts"] == answer.args["ts"]
    assert len([c for c in bot.slack.calls_to("chat.postMessage") if c.args.get("channel") == NEW_CHANNEL]) == 1


def test_re_runs_are_limited_per_incident_and_user_and_the_clicker_is_told(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    incident, message = _answered_new_channel(bot)
    before = bot.dropped("rate")

    for _ in range(RERUNS_PER_MINUTE + 1):  # one click more than a minute allows
        bot.send.click("rerun_channel", incident.id, user="UALICE", channel=NEW_CHANNEL, message=message)
    refusal = bot.slack.wait_for(lambda c: c.method == "chat.postEphemeral")[0]
    assert refusal.args["user"] == "UALICE" and "re-run this investigation" in refusal.args["text"]
    bot.send.click("rerun_channel", incident.id, user="UBOB", channel=NEW_CHANNEL, message=message)  # another responder may

    # Each re-run reads the channel first: the allowed clicks did, and then each edited the answer.
    bot.slack.wait_for(lambda c: c.method == "conversations.history", count=RERUNS_PER_MINUTE + 1)
    _answer_in(bot, NEW_CHANNEL, count=1 + RERUNS_PER_MINUTE + 1)
    bot.wait_until_dropped("rate", before + 1)
    assert len(bot.slack.calls_to("conversations.history")) == RERUNS_PER_MINUTE + 1
    assert len(bot.slack.calls_to("chat.postEphemeral")) == 1


def test_at_culprit_again_shares_the_re_run_limit_with_the_button_and_is_told(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)  # the general per-user limit (10 a minute) is far from reached here
    incident, message = _answered_new_channel(bot)
    before = bot.dropped("rate")
    bot.send.click("rerun_channel", incident.id, user="UALICE", channel=NEW_CHANNEL, message=message)
    bot.slack.wait_for(lambda c: c.method == "conversations.history")  # the click's re-run read the channel

    for _ in range(RERUNS_PER_MINUTE):  # with the click, one re-run more than a minute allows
        bot.send.mention("again", channel=NEW_CHANNEL, user="UALICE")
    refusal = bot.slack.wait_for(lambda c: c.method == "chat.postEphemeral")[0]
    assert refusal.args["user"] == "UALICE" and refusal.args["channel"] == NEW_CHANNEL
    assert "re-run this investigation" in refusal.args["text"]
    bot.wait_until_dropped("rate", before + 1)
    _answer_in(bot, NEW_CHANNEL, count=1 + RERUNS_PER_MINUTE)
    assert len(bot.slack.calls_to("conversations.history")) == RERUNS_PER_MINUTE
    # The refused mention is not taken for a question either: nothing new is posted in the channel.
    assert len([c for c in bot.slack.calls_to("chat.postMessage") if c.args.get("channel") == NEW_CHANNEL]) == 1


def test_a_new_incident_channel_whose_topic_holds_a_nul_is_still_investigated(database_url: str, start_bot: StartBot) -> None:
    """The topic is the incident's first description: on PostgreSQL a NUL in it failed the investigation where
    it stored the incident, and the channel got a failure instead of suspects."""
    migrate(database_url)
    seed_changes(database_url, utcnow())
    bot = start_bot(database_url)
    bot.slack.channel_names[NEW_CHANNEL] = "inc-payments-502"
    bot.slack.channel_topics[NEW_CHANNEL] = "card payments \x00fail with 502 \ud800at checkout"
    bot.send.event({"type": "channel_created", "channel": {"id": NEW_CHANNEL, "name": "inc-payments-502", "created": int(time.time())}})
    _answer_in(bot, NEW_CHANNEL)
    assert "card payments fail with 502 \ufffdat checkout" in _incident(bot, NEW_CHANNEL).text


def test_a_re_run_button_naming_no_investigation_is_told_so(database_url: str, start_bot: StartBot) -> None:
    """A value with a NUL failed the incident query on PostgreSQL inside the listener: the clicker heard nothing."""
    migrate(database_url)
    bot = start_bot(database_url)
    message = {"ts": "1.1", "text": "suspects", "blocks": [], "type": "message"}
    for value in ("auto-\x00", "auto-" + "f" * 300, "auto-0123456789ab"):
        bot.send.click("rerun_channel", value, user="UALICE", channel=INCIDENT_CHANNEL, message=message)
    told = bot.slack.wait_for(lambda c: c.method == "chat.postEphemeral", count=3)
    assert [c.args["text"] for c in told] == ["There is no investigation of mine to re-run in this channel."] * 3


def test_a_channel_that_is_not_an_incident_channel_starts_nothing(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    bot.slack.channel_names["CRANDOM"] = "random-chat"
    bot.send.event({"type": "channel_created", "channel": {"id": "CRANDOM", "name": "random-chat", "created": int(time.time())}})
    bot.slack.channel_names[NEW_CHANNEL] = "inc-search"
    bot.send.event({"type": "channel_created", "channel": {"id": NEW_CHANNEL, "name": "inc-search", "created": int(time.time())}})
    _answer_in(bot, NEW_CHANNEL)  # the later incident channel was answered, so the earlier event was handled
    assert not any(c.args.get("channel") == "CRANDOM" for c in bot.slack.calls if c.method.startswith("chat."))


def test_with_an_allow_list_only_a_listed_creator_opens_an_investigation(store: str, start_bot: StartBot) -> None:
    """Slack names no user on ``channel_created``: the channel's creator is who the allow-list checks."""
    bot = start_bot(store, env={"CULPRIT_ALLOWED_USERS": '["UIC"]'})
    refused = bot.dropped("user")
    bot.slack.channel_names["CSTRANGE"] = "inc-stranger"
    bot.send.event({"type": "channel_created", "channel": {"id": "CSTRANGE", "name": "inc-stranger", "created": int(time.time()), "creator": "USTRANGER"}})
    bot.wait_until_dropped("user", refused + 1)
    bot.slack.channel_names[NEW_CHANNEL] = "inc-search"
    bot.send.event({"type": "channel_created", "channel": {"id": NEW_CHANNEL, "name": "inc-search", "created": int(time.time()), "creator": "UIC"}})
    _answer_in(bot, NEW_CHANNEL)
    assert not any(c.args.get("channel") == "CSTRANGE" for c in bot.slack.calls if c.method.startswith(("chat.", "conversations.join")))


def _pagerduty(bot: Bot, event: dict, secret: str = PD_SECRET) -> httpx.Response:
    body = json.dumps({"event": event}).encode()
    signature = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-PagerDuty-Signature": f"v1=0000,{signature}"}
    return httpx.post(f"{bot.url}/webhooks/pagerduty", content=body, headers=headers)


def _pd_event(event_id: str, incident_id: str, occurred: str, kind: str = "incident.triggered") -> dict:
    return {
        "id": event_id, "event_type": kind, "resource_type": "incident", "occurred_at": occurred,
        "data": {"id": incident_id, "type": "incident", "title": "Card payments failing with 502",
                 "service": {"id": "PSVC", "summary": "payments", "type": "service_reference"}},
    }


def test_pagerduty_trigger_starts_one_investigation_and_forgeries_and_replays_none(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store, env={"CULPRIT_PAGERDUTY_WEBHOOK_SECRET": PD_SECRET, "CULPRIT_INCIDENT_POST_CHANNEL": INCIDENT_CHANNEL})
    now = utcnow().isoformat()
    first = _pagerduty(bot, _pd_event("01EVENT", "PINC1", now))
    assert first.status_code == 202 and first.json()["started"] is True
    answer = _answer_in(bot, INCIDENT_CHANNEL)[0]
    # The answer is about the PagerDuty incident: its title, in the notification text and in the incident section.
    assert "Card payments failing with 502" in answer.args["text"]
    incident_section = next(b for b in answer.args["blocks"] if "*Incident as understood:*" in (b.get("text") or {}).get("text", ""))
    assert "Card payments failing with 502" in incident_section["text"]["text"]
    assert _incident(bot, INCIDENT_CHANNEL).service == "payments"

    again = _pagerduty(bot, _pd_event("01EVENT", "PINC1", now))  # PagerDuty delivered it twice
    other_event = _pagerduty(bot, _pd_event("02EVENT", "PINC1", now))  # or a second subscription did
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    assert (other_event.status_code, other_event.json()["duplicate"]) == (200, True)
    assert _pagerduty(bot, _pd_event("03EVENT", "PINC2", now), secret="guessed").status_code == 401
    stale = (utcnow() - timedelta(hours=3)).isoformat()
    replayed = _pagerduty(bot, _pd_event("04EVENT", "PINC3", stale))
    assert replayed.status_code == 400 and "replayed" in replayed.json()["error"]
    signature = "v1=" + hmac.new(PD_SECRET.encode(), b"{not json", hashlib.sha256).hexdigest()
    malformed = httpx.post(f"{bot.url}/webhooks/pagerduty", content=b"{not json", headers={"X-PagerDuty-Signature": signature})
    huge = httpx.post(f"{bot.url}/webhooks/pagerduty", content=b" " * (MAX_BODY_BYTES + 1), headers={"X-PagerDuty-Signature": signature})
    assert (malformed.status_code, huge.status_code) == (400, 413)
    ack = _pagerduty(bot, _pd_event("05EVENT", "PINC1", now, kind="incident.acknowledged"))
    assert ack.status_code == 200 and ack.json()["started"] is False
    assert bot.metric(TRIGGERED, outcome="started") >= 1
    placeholders = [c for c in bot.slack.calls_to("chat.postMessage") if c.args.get("channel") == INCIDENT_CHANNEL]
    assert len(placeholders) == 1


def _incident_post(bot: Bot, payload: dict, *, secret: str = GENERIC_SECRET, timestamp: int | None = None) -> httpx.Response:
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = "v1=" + hmac.new(secret.encode(), b"v1:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Culprit-Request-Timestamp": stamp, "X-Culprit-Signature": signature}
    return httpx.post(f"{bot.url}/incidents", content=body, headers=headers)


def test_signed_generic_incidents_start_once_and_unsigned_or_stale_ones_never(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store, env={"CULPRIT_INCIDENTS_WEBHOOK_SECRET": GENERIC_SECRET})
    payload = {"id": "GRAFANA-77", "title": "search ranking returns stale items", "channel": INCIDENT_CHANNEL}
    assert _incident_post(bot, payload, secret="guessed").status_code == 401
    assert _incident_post(bot, payload, timestamp=int(time.time()) - 600).status_code == 401
    assert _incident_post(bot, {"id": "bad id with spaces", "title": "x", "channel": INCIDENT_CHANNEL}).status_code == 400
    assert _incident_post(bot, {"id": "NOCHAN", "title": "x"}).status_code == 400
    assert _incident_post(bot, {"id": "HUGE", "title": "x" * MAX_BODY_BYTES, "channel": INCIDENT_CHANNEL}).status_code == 413
    started = _incident_post(bot, payload)
    assert started.status_code == 202
    assert _incident_post(bot, payload).json() == {"started": False, "incident": started.json()["incident"], "duplicate": True}
    _answer_in(bot, INCIDENT_CHANNEL)
    assert _incident(bot, INCIDENT_CHANNEL).service == "search"
    assert len([c for c in bot.slack.calls_to("chat.postMessage") if c.args.get("channel") == INCIDENT_CHANNEL]) == 1


def test_a_refused_incident_names_its_wrong_fields_without_echoing_what_was_sent(store: str, start_bot: StartBot) -> None:
    """The 400 answer was pydantic's whole message, quoting the sender's values: a token pasted into the id
    came back in the answer (and into whatever logs answers)."""
    bot = start_bot(store, env={"CULPRIT_INCIDENTS_WEBHOOK_SECRET": GENERIC_SECRET})
    sent = "ghp_s3cret for ana@example.com"
    refused = _incident_post(bot, {"id": sent, "title": "", "text": f"{sent}\x00", "channel": INCIDENT_CHANNEL})

    assert refused.status_code == 400
    assert refused.json()["error"].split("; ") == [
        r"id: String should match pattern '^[A-Za-z0-9._:\-]+$' (string_pattern_mismatch)",
        "title: String should have at least 1 character (string_too_short)",
        r"text: holds a NUL character (\u0000) (value_error)",
    ]
    not_an_object = _incident_post(bot, [sent])  # type: ignore[arg-type]
    assert not_an_object.json() == {"error": "body: Input should be an object (model_type)"}


def test_an_incident_start_before_1970_or_out_of_range_is_refused_naming_the_field(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store, env={"CULPRIT_INCIDENTS_WEBHOOK_SECRET": GENERIC_SECRET})
    for number, started_at in enumerate(["1969-07-20T20:17:00Z", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
                                         "9999-12-31T23:59:59-01:00", "yesterday"]):
        payload = {"id": f"OLD-{number}", "title": "checkout down", "channel": INCIDENT_CHANNEL, "started_at": started_at}
        refused = _incident_post(bot, payload)
        assert refused.status_code == 400, started_at
        assert "started_at" in refused.json()["error"], started_at
    # Refused before anything was claimed: the same incident with a good time starts.
    good = {"id": "OLD-0", "title": "checkout down", "channel": INCIDENT_CHANNEL, "started_at": "2024-05-01T09:40:00Z"}
    assert _incident_post(bot, good).status_code == 202
    _answer_in(bot, INCIDENT_CHANNEL)


def test_an_incident_start_without_a_zone_or_in_the_future_is_refused_not_guessed(store: str, start_bot: StartBot) -> None:
    """A ``started_at`` without a zone was read as UTC (a local time hours off, searched silently) and one in 2099
    was moved to now, though ``POST /changes`` refuses both; PagerDuty's ``occurred_at`` read a naive time as UTC too."""
    bot = start_bot(store, env={"CULPRIT_INCIDENTS_WEBHOOK_SECRET": GENERIC_SECRET,
                                "CULPRIT_PAGERDUTY_WEBHOOK_SECRET": PD_SECRET, "CULPRIT_INCIDENT_POST_CHANNEL": INCIDENT_CHANNEL})
    naive = utcnow().replace(tzinfo=None).isoformat()
    tomorrow = (utcnow() + timedelta(days=1)).isoformat()
    for number, (started_at, reason) in enumerate([(naive, "has no time zone"), ("2099-01-01T00:00:00Z", "is in the future"),
                                                   (tomorrow, "is in the future")]):  # fmt: skip
        payload = {"id": f"WHEN-{number}", "title": "checkout down", "channel": INCIDENT_CHANNEL, "started_at": started_at}
        refused = _incident_post(bot, payload)
        assert refused.status_code == 400 and refused.json()["error"].startswith(f"started_at {started_at!r} {reason}")
        refused = _pagerduty(bot, _pd_event(f"{number:02d}WHEN", f"PWHEN{number}", started_at))
        assert refused.status_code == 400 and f"occurred_at {started_at!r} {reason}" in refused.json()["error"]
    assert bot.slack.calls_to("chat.postMessage") == []
    # A sender's clock a minute ahead is within the allowance: started, at now.
    ahead = {"id": "WHEN-0", "title": "checkout down", "channel": INCIDENT_CHANNEL,
             "started_at": (utcnow() + timedelta(minutes=1)).isoformat()}
    assert _incident_post(bot, ahead).status_code == 202
    _answer_in(bot, INCIDENT_CHANNEL)
    assert _incident(bot, INCIDENT_CHANNEL).started_at.replace(tzinfo=None) <= utcnow().replace(tzinfo=None)


def test_incident_fields_no_database_stores_are_refused_naming_the_field(database_url: str, start_bot: StartBot) -> None:
    """A NUL in a PagerDuty incident id was a 500 on PostgreSQL (the claim's insert failed); one in a title,
    or a lone surrogate, was answered 202 and the investigation then failed where it stored the incident."""
    migrate(database_url)
    seed_changes(database_url, utcnow())
    bot = start_bot(database_url, env={"CULPRIT_PAGERDUTY_WEBHOOK_SECRET": PD_SECRET, "CULPRIT_INCIDENT_POST_CHANNEL": INCIDENT_CHANNEL,
                                       "CULPRIT_INCIDENTS_WEBHOOK_SECRET": GENERIC_SECRET})  # fmt: skip
    now = utcnow().isoformat()
    for number, (field, data) in enumerate([
        ("data.id", {"id": "PNUL\x00"}), ("data.title", {"title": "card payments \ud800 failing"}),
        ("data.id", {"id": {"nested": "PINC"}}), ("data.service.summary", {"service": {"summary": ["payments"]}}),
    ]):  # fmt: skip
        event = _pd_event(f"{number:02d}BAD", f"PBAD{number}", now)
        event["data"].update(data)
        refused = _pagerduty(bot, event)
        assert refused.status_code == 400, field
        assert field in refused.json()["error"], refused.json()
    for field in ("title", "text", "service"):
        payload = {"id": f"NUL-{field}", "title": "checkout down", "channel": INCIDENT_CHANNEL, field: "checkout\x00down"}
        refused = _incident_post(bot, payload)
        assert refused.status_code == 400 and field in refused.json()["error"] and "NUL" in refused.json()["error"]
    assert bot.slack.calls_to("chat.postMessage") == []
    assert _pagerduty(bot, _pd_event("10GOOD", "PGOOD", now)).status_code == 202
    _answer_in(bot, INCIDENT_CHANNEL)


def test_a_pagerduty_event_time_that_cannot_be_read_is_refused_naming_occurred_at(store: str, start_bot: StartBot) -> None:
    """The answer spoke of /rca's ``at:`` syntax ("`at:yesterday` is not an ISO time; write it like
    `at:2024-05-01T09:40Z`"), a field PagerDuty's event has no such thing as, and never named occurred_at."""
    bot = start_bot(store, env={"CULPRIT_PAGERDUTY_WEBHOOK_SECRET": PD_SECRET, "CULPRIT_INCIDENT_POST_CHANNEL": INCIDENT_CHANNEL})
    for number, occurred in enumerate(["yesterday", 1764620000, "9999-12-31T23:59:59-01:00", "1969-07-20T20:17:00Z"]):
        refused = _pagerduty(bot, _pd_event(f"{number:02d}TIME", f"PTIME{number}", occurred))  # type: ignore[arg-type]
        assert refused.status_code == 400, occurred
        assert "occurred_at" in refused.json()["error"] and "at:" not in refused.json()["error"].replace("occurred_at", ""), refused.json()
    assert bot.slack.calls_to("chat.postMessage") == []


def test_an_incidents_service_is_kept_when_no_catalog_was_ingested(database_url: str, start_bot: StartBot) -> None:
    """With no catalog to check it against, the service the sender named was dropped (/rca keeps it): the
    investigation ran as if none was named."""
    migrate(database_url)
    bot = start_bot(database_url, env={"CULPRIT_INCIDENTS_WEBHOOK_SECRET": GENERIC_SECRET})
    payload = {"id": "GRAFANA-5", "title": "card payments fail", "service": "payments-api", "channel": INCIDENT_CHANNEL}

    assert _incident_post(bot, payload).status_code == 202
    _answer_in(bot, INCIDENT_CHANNEL)
    assert _incident(bot, INCIDENT_CHANNEL).service == "payments-api"



def test_an_incident_posted_with_an_e_mail_and_a_phone_is_stored_without_them(database_url: str, start_bot: StartBot) -> None:
    migrate(database_url)
    bot = start_bot(database_url, env={"CULPRIT_INCIDENTS_WEBHOOK_SECRET": GENERIC_SECRET})
    payload = {"id": "GRAFANA-6", "title": f"card payments fail, {PERSONAL}", "text": PERSONAL, "channel": INCIDENT_CHANNEL}

    assert _incident_post(bot, payload).status_code == 202
    _answer_in(bot, INCIDENT_CHANNEL)
    assert _incident(bot, INCIDENT_CHANNEL).title == "card payments fail, paged [email], call [phone]"
    stored = stored_text(database_url)
    assert "card payments fail" in stored and not [part for part in PERSONAL_PARTS if part in stored]

def test_an_incident_that_could_not_start_is_given_back_and_the_retry_starts_it(store: str, start_bot: StartBot) -> None:
    queue = ReplyQueue(capacity=0)
    bot = start_bot(store, env={"CULPRIT_INCIDENTS_WEBHOOK_SECRET": GENERIC_SECRET}, replies=queue)
    payload = {"id": "GRAFANA-88", "title": "search ranking returns stale items", "channel": INCIDENT_CHANNEL}

    busy = _incident_post(bot, payload)  # every place in the reply queue is taken
    assert busy.status_code == 503 and "send it again" in busy.json()["error"]
    queue.capacity = 10
    bot.slack.not_in_channels.add(INCIDENT_CHANNEL)
    refused = _incident_post(bot, payload)  # the retry is not a duplicate: Slack now refuses the first post
    assert refused.status_code == 502 and "send it again" in refused.json()["error"]
    bot.slack.not_in_channels.discard(INCIDENT_CHANNEL)

    started = _incident_post(bot, payload)  # and the next retry starts it, once
    assert started.status_code == 202 and started.json()["started"] is True
    _answer_in(bot, INCIDENT_CHANNEL)
    assert _incident_post(bot, payload).json()["duplicate"] is True


def test_pagerduty_retries_while_culprit_is_busy_are_told_to_come_back_and_the_channel_is_told_once(
    store: str, start_bot: StartBot
) -> None:
    queue = ReplyQueue(capacity=0)
    env = {"CULPRIT_PAGERDUTY_WEBHOOK_SECRET": PD_SECRET, "CULPRIT_INCIDENT_POST_CHANNEL": INCIDENT_CHANNEL}
    bot = start_bot(store, env=env, replies=queue)
    event = _pd_event("01EVENT", "PBUSY1", utcnow().isoformat())

    retries = [_pagerduty(bot, event) for _ in range(3)]  # PagerDuty retries each 503 it is answered
    assert {(r.status_code, r.headers.get("retry-after")) for r in retries} == {(503, str(RETRY_AFTER_S))}
    assert "send it again" in retries[0].json()["error"]
    told = [c for c in bot.slack.calls_to("chat.postMessage") if c.args.get("channel") == INCIDENT_CHANNEL]
    assert [c.args["text"] for c in told] == [queue.busy_text()]

    queue.capacity = 10
    started = _pagerduty(bot, event)
    assert started.status_code == 202 and started.json()["started"] is True
    _answer_in(bot, INCIDENT_CHANNEL)


def test_a_new_incident_channel_the_queue_could_not_take_is_investigated_when_culprit_joins(store: str, start_bot: StartBot) -> None:
    queue = ReplyQueue(capacity=0)
    bot = start_bot(store, replies=queue)
    not_started = bot.metric(TRIGGERED, outcome="not_started")
    bot.slack.channel_names[NEW_CHANNEL] = "inc-payments-502"
    bot.send.event({"type": "channel_created", "channel": {"id": NEW_CHANNEL, "name": "inc-payments-502", "created": int(time.time())}})
    busy = bot.slack.wait_for(lambda c: c.method == "chat.postMessage" and c.args.get("channel") == NEW_CHANNEL)[0]
    assert busy.args["text"] == queue.busy_text()
    bot.wait_for_metric(TRIGGERED, not_started + 1, outcome="not_started")

    queue.capacity = 10
    bot.send.event({"type": "member_joined_channel", "user": BOT_USER_ID, "channel": NEW_CHANNEL, "channel_type": "C"})
    _answer_in(bot, NEW_CHANNEL)


@pytest.fixture
def outage(postgres_url: str, data_dir: Path) -> Iterator[DatabaseOutage]:
    """The seeded PostgreSQL store behind an address that refuses connections until ``end()``."""
    migrate(postgres_url)
    seed_changes(postgres_url, utcnow())
    down = DatabaseOutage(postgres_url)
    yield down
    get_engine(down.url).dispose()
    down.close()


def test_a_database_outage_is_answered_503_retry_after_and_the_retry_starts_the_investigation(
    outage: DatabaseOutage, postgres_url: str, start_bot: StartBot
) -> None:
    bot = start_bot(outage.url, env={"CULPRIT_PAGERDUTY_WEBHOOK_SECRET": PD_SECRET, "CULPRIT_INCIDENT_POST_CHANNEL": INCIDENT_CHANNEL,
                                     "CULPRIT_INCIDENTS_WEBHOOK_SECRET": GENERIC_SECRET})  # fmt: skip
    now = utcnow().isoformat()
    names_a_service = _pd_event("01EVENT", "PINC1", now)  # its service is looked up in the catalog first
    names_none = _pd_event("02EVENT", "PINC2", now)
    del names_none["data"]["service"]  # nothing to look up: claiming the incident is the first database call
    generic = {"id": "GRAFANA-99", "title": "search ranking returns stale items", "channel": INCIDENT_CHANNEL}

    with capture_logs() as logs:
        refused = [_pagerduty(bot, names_a_service), _pagerduty(bot, names_none), _incident_post(bot, generic)]
    database = make_url(postgres_url)
    for answer in refused:
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == str(RETRY_AFTER_S)
        assert answer.json() == {"error": f"culprit could not reach its database; send it again in {RETRY_AFTER_S} seconds"}
        # The driver's message names where the database is and who connects: the sender learns none of it.
        assert not any(part in answer.text for part in (f":{outage.port}", str(database.username), str(database.database)))
    failures = [entry for entry in logs if entry["event"] == "incident delivery not taken: the database failed"]
    assert [(entry["source"], entry["step"]) for entry in failures] == [
        ("pagerduty", "service catalog"), ("pagerduty", "claim"), ("webhook", "service catalog")
    ]
    # The operator's log keeps what failed, by type: the driver's message would name the database and echo values.
    assert all(entry["error"].startswith("OperationalError") and str(outage.port) not in entry["error"] for entry in failures)

    outage.end()  # the database is back: each sender's retry starts its investigation, nothing was left claimed
    retried = [_pagerduty(bot, names_a_service), _pagerduty(bot, names_none), _incident_post(bot, generic)]
    assert [(answer.status_code, answer.json()["started"]) for answer in retried] == [(202, True)] * 3
    _answer_in(bot, INCIDENT_CHANNEL, count=3)
    assert _pagerduty(bot, names_none).json()["duplicate"] is True


def _claimed(database_url: str, key: str, *, holder: str, claimed_at: datetime, done_at: datetime | None = None) -> None:
    """A claim on an incident as another delivery left it."""
    with session_scope(database_url) as session:
        session.add(Claim(scope=AUTO_INVESTIGATIONS, key=key, holder=holder, claimed_at=claimed_at, done_at=done_at))


def _dead_process_on_this_host() -> str:
    """The holder id of a process on this host that has exited, as one that died mid-claim leaves it."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return f"{socket.gethostname()}:{finished.stdout.strip()}:0dead000"


def _stale_search_incident(bot: Bot, incident_id: str) -> httpx.Response:
    return _incident_post(bot, {"id": incident_id, "title": "search ranking returns stale items", "channel": INCIDENT_CHANNEL})


def test_an_unfinished_claim_whose_holder_died_or_whose_lease_ran_out_is_taken_over_and_a_finished_one_is_a_duplicate(
    database_url: str, start_bot: StartBot
) -> None:
    seed_changes(database_url, utcnow())
    bot = start_bot(database_url, env={"CULPRIT_INCIDENTS_WEBHOOK_SECRET": GENERIC_SECRET})
    now = utcnow()
    other_replica = "replica-2:17:a1b2c3d4"  # on another host: only its lease says whether it is gone
    _claimed(database_url, "incident:LEASE-OVER", holder=other_replica, claimed_at=now - CLAIM_LEASE - timedelta(seconds=5))
    _claimed(database_url, "incident:DIED", holder=_dead_process_on_this_host(), claimed_at=now)
    _claimed(database_url, "incident:POSTING", holder=other_replica, claimed_at=now)  # still making its first post
    _claimed(database_url, "incident:DONE", holder=other_replica, claimed_at=now - timedelta(days=1), done_at=now - timedelta(days=1))

    taken = [_stale_search_incident(bot, "LEASE-OVER"), _stale_search_incident(bot, "DIED")]
    assert [(answer.status_code, answer.json()["started"]) for answer in taken] == [(202, True)] * 2
    _answer_in(bot, INCIDENT_CHANNEL, count=2)
    assert is_done(AUTO_INVESTIGATIONS, "incident:LEASE-OVER", database_url) and is_done(AUTO_INVESTIGATIONS, "incident:DIED", database_url)

    posting = _stale_search_incident(bot, "POSTING")  # that delivery may yet fail: come back, not "duplicate"
    assert posting.status_code == 503 and posting.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert _stale_search_incident(bot, "DONE").json()["duplicate"] is True

    with session_scope(database_url) as session:  # long after: a finished investigation's claim is never taken over
        for found in session.query(Claim).filter(Claim.key.in_(["incident:LEASE-OVER", "incident:DIED"])):
            found.claimed_at = now - timedelta(days=1)
    again = [_stale_search_incident(bot, "LEASE-OVER"), _stale_search_incident(bot, "DIED")]
    assert [(answer.status_code, answer.json()["duplicate"]) for answer in again] == [(200, True)] * 2
    assert len([c for c in bot.slack.calls_to("chat.postMessage") if c.args.get("channel") == INCIDENT_CHANNEL]) == 2


def test_a_claim_the_database_failed_to_give_back_is_logged_and_a_retry_takes_it_over_after_its_lease(
    outage: DatabaseOutage, postgres_url: str, start_bot: StartBot
) -> None:
    outage.end()  # the database is up when the incident arrives
    bot = start_bot(outage.url, env={"CULPRIT_INCIDENTS_WEBHOOK_SECRET": GENERIC_SECRET})

    def database_goes_down(method: str, args: dict) -> None:
        if method == "chat.postMessage" and args.get("channel") == INCIDENT_CHANNEL:
            outage.begin()  # between the claim and giving it back

    bot.slack.before_answer = database_goes_down
    bot.slack.not_in_channels.add(INCIDENT_CHANNEL)  # and Slack refuses the first post
    with capture_logs() as logs:
        refused = _stale_search_incident(bot, "GRAFANA-42")
    assert refused.status_code == 502 and "send it again" in refused.json()["error"]
    kept = [entry for entry in logs if entry["event"].startswith("investigation claim not given back")]
    assert [entry["key"] for entry in kept] == ["incident:GRAFANA-42"]
    database = make_url(postgres_url)
    assert kept[0]["error"].startswith("OperationalError")
    assert not any(part in str(kept[0]) for part in (str(outage.port), str(database.host), str(database.database)))

    bot.slack.before_answer = None
    bot.slack.not_in_channels.discard(INCIDENT_CHANNEL)
    outage.end()
    early = _stale_search_incident(bot, "GRAFANA-42")  # within the lease: told to come back, not "duplicate"
    assert early.status_code == 503 and early.headers["Retry-After"] == str(RETRY_AFTER_S)
    with session_scope(postgres_url) as session:  # the lease runs out
        held = session.get(Claim, (AUTO_INVESTIGATIONS, "incident:GRAFANA-42"))
        assert held is not None and held.done_at is None
        held.claimed_at = utcnow() - CLAIM_LEASE - timedelta(seconds=5)
    started = _stale_search_incident(bot, "GRAFANA-42")
    assert started.status_code == 202 and started.json()["started"] is True
    _answer_in(bot, INCIDENT_CHANNEL)
    assert _stale_search_incident(bot, "GRAFANA-42").json()["duplicate"] is True


RETRYING = "channel investigation not started: the database failed; trying again"
GAVE_UP = "channel investigation not started: the database failed"


def test_a_new_incident_channel_the_database_stays_down_for_is_told_how_to_start_by_hand(
    outage: DatabaseOutage, postgres_url: str, start_bot: StartBot
) -> None:
    """Slack does not send an acknowledged event again: without the message the channel would wait in silence."""
    bot = start_bot(outage.url, database_retry_delays_s=(0.01, 0.01))
    bot.slack.channel_names[NEW_CHANNEL] = "inc-payments-502"
    with capture_logs() as logs:
        bot.send.event({"type": "channel_created", "channel": {"id": NEW_CHANNEL, "name": "inc-payments-502", "created": int(time.time())}})
        told = bot.slack.wait_for(lambda c: c.method == "chat.postMessage" and c.args.get("channel") == NEW_CHANNEL)[0]
    assert "could not start investigating this incident" in told.args["text"]
    assert "`/rca <what is broken>`" in told.args["text"] and f"<@{BOT_USER_ID}>" in told.args["text"]
    database = make_url(postgres_url)
    assert not any(part in told.args["text"] for part in (str(outage.port), str(database.database), "OperationalError"))
    assert [entry["attempt"] for entry in logs if entry["event"] == RETRYING] == [1, 2]
    gave_up = [entry for entry in logs if entry["event"] == GAVE_UP]
    assert [entry["channel"] for entry in gave_up] == [NEW_CHANNEL] and gave_up[0]["error"].startswith("OperationalError")
    assert not any(str(outage.port) in str(entry) for entry in logs if entry["event"] in (RETRYING, GAVE_UP))


def test_a_new_incident_channel_is_investigated_once_a_short_database_outage_ends(
    outage: DatabaseOutage, start_bot: StartBot
) -> None:
    bot = start_bot(outage.url, database_retry_delays_s=(0.1,) * 300)
    bot.slack.channel_names[NEW_CHANNEL] = "inc-payments-502"
    with capture_logs() as logs:
        bot.send.event({"type": "channel_created", "channel": {"id": NEW_CHANNEL, "name": "inc-payments-502", "created": int(time.time())}})
        wait_until(lambda: any(entry["event"] == RETRYING for entry in logs), "the new channel's listener never met the outage")
        outage.end()  # the database is back while the listener waits to try again
        _answer_in(bot, NEW_CHANNEL)
    assert _incident(bot, NEW_CHANNEL).service == "payments"
    assert not any(entry["event"] == GAVE_UP for entry in logs)
    posted = [c.args["text"] for c in bot.slack.calls_to("chat.postMessage") if c.args.get("channel") == NEW_CHANNEL]
    assert len(posted) == 1 and posted[0].startswith("🔎 New incident")


def test_a_new_incident_channel_waiting_for_the_database_holds_no_slack_listener_thread(
    outage: DatabaseOutage, start_bot: StartBot
) -> None:
    """The waits (36 s in all) once held the listener thread that took the event: a burst of new channels during
    an outage used up the threads every other Slack request is acked on. Now they are free while it waits."""
    bot = start_bot(outage.url, database_retry_delays_s=(0.1,) * 300)
    bot.slack.channel_names[NEW_CHANNEL] = "inc-payments-502"
    with capture_logs() as logs:
        bot.send.event({"type": "channel_created", "channel": {"id": NEW_CHANNEL, "name": "inc-payments-502", "created": int(time.time())}})
        wait_until(lambda: any(entry["event"] == RETRYING for entry in logs), "the new channel's start never met the outage")
        bot.app.listener_runner.listener_executor.shutdown(wait=True)  # returns once no listener is running
        assert not any(entry["event"] == GAVE_UP for entry in logs)  # the start still waits, elsewhere
        outage.end()
        _answer_in(bot, NEW_CHANNEL)
    assert _incident(bot, NEW_CHANNEL).service == "payments"


def test_new_incident_channels_past_the_queue_are_told_at_once_how_to_start_by_hand(
    outage: DatabaseOutage, start_bot: StartBot
) -> None:
    bot = start_bot(outage.url, database_retry_delays_s=(0.1,) * 300)
    runtime_of(bot.app).channel_starts = ReplyQueue(capacity=1, runners=1)
    for channel, name in ((NEW_CHANNEL, "inc-payments-502"), ("CNEW2", "inc-search-slow")):
        bot.slack.channel_names[channel] = name
    with capture_logs() as logs:
        bot.send.event({"type": "channel_created", "channel": {"id": NEW_CHANNEL, "name": "inc-payments-502", "created": int(time.time())}})
        wait_until(lambda: any(entry["event"] == RETRYING for entry in logs), "the first channel's start never met the outage")
        bot.send.event({"type": "channel_created", "channel": {"id": "CNEW2", "name": "inc-search-slow", "created": int(time.time())}})
        told = bot.slack.wait_for(lambda c: c.method == "chat.postMessage" and c.args.get("channel") == "CNEW2")[0]
        assert "too many incident channels are waiting for it" in told.args["text"] and "`/rca <what is broken>`" in told.args["text"]
        outage.end()
        _answer_in(bot, NEW_CHANNEL)  # the first one, in the queue, starts once the database is back


@pytest.mark.timeout(120)  # a hang guard only: stopping would otherwise wait out the ten-minute retry
def test_stopping_during_an_outage_ends_a_new_channels_wait_and_tells_the_channel(outage: DatabaseOutage, start_bot: StartBot) -> None:
    bot = start_bot(outage.url, database_retry_delays_s=(600.0,))
    bot.slack.channel_names[NEW_CHANNEL] = "inc-payments-502"
    with capture_logs() as logs:
        bot.send.event({"type": "channel_created", "channel": {"id": NEW_CHANNEL, "name": "inc-payments-502", "created": int(time.time())}})
        wait_until(lambda: any(entry["event"] == RETRYING for entry in logs), "the new channel's listener never met the outage")
        finish_acked_replies(bot.app)  # SIGTERM: returns once the listener has made its last try
    assert [entry["channel"] for entry in logs if entry["event"] == GAVE_UP] == [NEW_CHANNEL]
    told = [c.args["text"] for c in bot.slack.calls_to("chat.postMessage") if c.args.get("channel") == NEW_CHANNEL]
    assert len(told) == 1 and "could not start investigating this incident" in told[0]
