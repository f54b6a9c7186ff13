"""Forged, stale, unwanted and excessive requests, over real HTTP."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from structlog.testing import capture_logs

from tests.bot.conftest import StartBot
from tests.bot.raw_http import send_chunked
from tests.waiting import wait_until

FORM = "application/x-www-form-urlencoded"


def test_a_forged_signature_is_refused_and_nothing_runs(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    forged = bot.send.command("checkout is down", sign_with="not-the-secret")
    mention, _ = bot.send.mention("what changed in feed", sign_with="not-the-secret")
    # Bolt answers 401 before any middleware or listener runs, so nothing is left to post.
    assert (forged.status_code, mention.status_code) == (401, 401)
    assert bot.slack.calls_to("chat.postMessage") == []


def test_a_stale_request_is_refused(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    stale = bot.send.command("checkout is down", timestamp=int(time.time()) - 6 * 60)
    response, _ = bot.send.mention("what changed in feed", timestamp=int(time.time()) - 6 * 60)
    assert (stale.status_code, response.status_code) == (401, 401)  # refused before any listener runs
    assert bot.slack.calls_to("chat.postMessage") == []


def test_users_and_channels_outside_the_allow_lists_are_refused(store: str, start_bot: StartBot) -> None:
    bot = start_bot(
        store, env={"CULPRIT_ALLOWED_USERS": '["UALICE"]', "CULPRIT_ALLOWED_CHANNELS": '["inc-checkout"]'}
    )
    users, channels = bot.dropped("user"), bot.dropped("channel")
    stranger = bot.send.command("checkout is down", user="USTRANGER")
    elsewhere = bot.send.command("checkout is down", channel="CGENERAL", channel_name="general")
    assert "not enabled for you" in stranger.json()["text"]
    assert "not enabled in this channel" in elsewhere.json()["text"]
    allowed = bot.send.command("checkout is down")
    assert allowed.json()["response_type"] == "in_channel"
    bot.slack.wait_for(lambda call: call.method == "chat.postMessage")
    bot.wait_until_dropped("user", users + 1)
    bot.wait_until_dropped("channel", channels + 1)
    assert len(bot.slack.calls_to("chat.postMessage")) == 1


def test_one_user_cannot_flood_the_pipeline(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store, env={"CULPRIT_USER_RATE_LIMIT_PER_MINUTE": "2"})
    limited = bot.dropped("rate")
    answers = [bot.send.command(f"checkout is down {n}").json() for n in range(3)]
    assert [a["response_type"] for a in answers] == ["in_channel", "in_channel", "ephemeral"]
    assert "2 times in the last minute" in answers[2]["text"]
    other = bot.send.command("checkout is down", user="UBOB")
    assert other.json()["response_type"] == "in_channel"

    _, _ = bot.send.mention("what changed in feed")
    hint = bot.slack.wait_for(lambda call: call.method == "chat.postEphemeral")[0]
    assert "2 times in the last minute" in hint.args["text"]
    bot.wait_until_dropped("rate", limited + 2)
    # The three accepted commands are each answered, and only they.
    answered = bot.slack.wait_for(lambda call: call.method == "chat.postMessage", count=3)
    assert len(answered) == 3


def test_health_and_metrics(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    bot.send.command("checkout is down")
    bot.slack.wait_for(lambda call: call.method == "chat.postMessage")
    health = httpx.get(f"{bot.url}/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "database": "ok"}
    metrics = httpx.get(f"{bot.url}/metrics").text
    assert 'culprit_http_request_seconds_count{path="/slack/events",status="200"}' in metrics
    assert 'culprit_answer_seconds_count{kind="command",outcome="answered"}' in metrics
    assert "culprit_rca_confidence_bucket" in metrics
    assert 'culprit_rca_stage_seconds_count{stage="rank"}' in metrics


def test_health_says_when_the_database_is_gone_and_nothing_about_where_it_is(data_dir, start_bot: StartBot) -> None:
    bot = start_bot("postgresql+psycopg://culprit_owner:hunter2@127.0.0.1:1/incidents_prod?connect_timeout=1")
    with capture_logs() as logs:
        health = httpx.get(f"{bot.url}/healthz", timeout=10)
    assert health.status_code == 503
    # Anyone who can reach the load balancer's check learns that the database failed, not its user, host or name.
    assert health.json() == {"status": "degraded", "database": "failed", "reason": "the database did not answer"}
    # The log names the failure by its type, never by the driver's message (the server it tried, its reply).
    [logged] = [entry for entry in logs if entry["event"] == "health check: the database did not answer"]
    assert logged["error"] == "OperationalError (psycopg.OperationalError)"


def test_a_stuck_database_does_not_hold_the_ack(store: str, start_bot: StartBot, monkeypatch) -> None:
    import bot.guards

    real_claim = bot.guards.claim
    entered, released = threading.Event(), threading.Event()

    def stuck_claim(*args: Any) -> bool:
        entered.set()
        released.wait(timeout=60)
        return real_claim(*args)

    # A real database cannot be made to hang on cue: the claim waits until the test has its ack.
    monkeypatch.setattr(bot.guards, "claim", stuck_claim)
    running = start_bot(store)
    response = running.send.command("checkout is down")
    # Only the test releases the claim, and only now: the ack came while the claim was stuck.
    assert entered.is_set()
    released.set()
    assert response.json()["response_type"] == "in_channel"
    running.slack.wait_for(lambda call: call.method == "chat.postMessage")


def test_an_unsigned_oversized_body_is_refused_while_it_streams(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    status, sent = send_chunked(bot.send.url, {"Content-Type": "application/json"}, total_bytes=64 * 1024 * 1024)
    assert status == 413
    assert sent < 32 * 1024 * 1024
    declared = httpx.post(bot.send.url, content=b"{" + b" " * (2 * 1024 * 1024) + b"}", headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert httpx.get(f"{bot.url}/healthz").status_code == 200


def test_the_signature_is_checked_before_the_body_is_parsed(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    # Not JSON, not signed: refused for the signature, without the parser ever seeing it.
    garbage = bot.send.http.post(bot.send.url, content=b'{"type": "event_callback", "event": [', headers={"Content-Type": "application/json"})
    assert garbage.status_code == 401
    forged = bot.send.post('{"type": "event_callback", "event": [', "application/json", sign_with="not-the-secret")
    assert forged.status_code == 401


def test_metrics_label_paths_by_route_not_by_what_was_asked(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    assert httpx.get(f"{bot.url}/healthz").status_code == 200
    for n in range(5):
        assert httpx.get(f"{bot.url}/probe-{n}-{uuid.uuid4().hex}").status_code == 404
    metrics = httpx.get(f"{bot.url}/metrics").text
    assert "/probe-" not in metrics
    assert 'culprit_http_request_seconds_count{path="other",status="404"}' in metrics
    assert 'culprit_http_request_seconds_count{path="/healthz",status="200"}' in metrics


def test_metrics_can_require_a_bearer_token(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store, env={"CULPRIT_METRICS_TOKEN": "m3trics-token-9e2d"})
    assert httpx.get(f"{bot.url}/metrics").status_code == 401
    assert httpx.get(f"{bot.url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    allowed = httpx.get(f"{bot.url}/metrics", headers={"Authorization": "Bearer m3trics-token-9e2d"})
    assert allowed.status_code == 200 and "culprit_http_request_seconds" in allowed.text
    for scheme in ("bearer", "BEARER"):  # the scheme is case-insensitive (RFC 7235); the token is not
        assert httpx.get(f"{bot.url}/metrics", headers={"Authorization": f"{scheme} m3trics-token-9e2d"}).status_code == 200
    assert httpx.get(f"{bot.url}/metrics", headers={"Authorization": "Bearer M3TRICS-TOKEN-9E2D"}).status_code == 401
    assert httpx.get(f"{bot.url}/healthz").status_code == 200  # the load balancer's check needs no token


def test_event_types_without_a_listener_are_acknowledged(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    response = bot.send.event({"type": "reaction_added", "user": "UALICE", "reaction": "eyes", "event_ts": "1.2"})
    assert response.status_code == 200


@pytest.mark.parametrize("env", [{}, {"CULPRIT_ALLOWED_USERS": '["UALICE"]'}], ids=["open", "allow-listed"])
def test_slacks_notice_that_it_drops_events_is_acknowledged_and_logged(store: str, start_bot: StartBot, env: dict) -> None:
    """It has no inner event: it was answered 404 (a failed delivery, which Slack counts against the app), or
    dropped unlogged by the allow-list, as it names no user."""
    bot = start_bot(store, env=env)
    notice = {"token": "legacy", "type": "app_rate_limited", "team_id": "T0001", "minute_rate_limited": 1518467820,
              "api_app_id": "ACULPRIT"}
    with capture_logs() as logs:
        response = bot.send.post(json.dumps(notice), "application/json")
    assert response.status_code == 200
    told = [entry for entry in logs if entry["event"].startswith("slack is dropping events")]
    assert len(told) == 1 and told[0]["log_level"] == "error" and told[0]["since_minute"] == 1518467820



def test_slacks_unsigned_ssl_check_is_answered_and_frees_nothing_else_from_the_signature(store: str, start_bot: StartBot) -> None:
    """Slack checks a slash command URL's certificate with an unsigned ``ssl_check=1``: it used to get a 401."""
    bot = start_bot(store)
    check = httpx.post(bot.send.url, content=b"ssl_check=1&token=legacy", headers={"Content-Type": FORM})  # no signature headers
    assert (check.status_code, check.text) == (200, "")
    # A command carrying ssl_check=1 is answered as Bolt answers an ssl_check: 200 and nothing run.
    command = bot.send.post(urlencode({**bot.send.command_payload("checkout is down"), "ssl_check": "1"}), FORM, sign_with="x")
    assert (command.status_code, command.text) == (200, "")
    # A click or an event with ssl_check=1 is no ssl_check to Bolt: its signature is checked as any other.
    click = bot.send.post(urlencode({"ssl_check": "1", "payload": json.dumps({"type": "block_actions"})}), FORM, sign_with="x")
    event = bot.send.post('{"ssl_check": "1", "type": "event_callback"}', "application/json", sign_with="x")
    assert (click.status_code, event.status_code) == (401, 401)
    assert bot.slack.calls_to("chat.postMessage") == [] and bot.slack.calls_to("chat.postEphemeral") == []


class HungClaims:
    """Stands in for ``bot.guards.claim`` on a hung database: each claim waits until :attr:`released` is set.

    :attr:`started` counts the claims that reached the database; :attr:`claimed` holds each one that then ran.
    """

    def __init__(self) -> None:
        self.started, self.released = threading.Semaphore(0), threading.Event()
        self.claimed: list[str] = []

    def __call__(self, scope: str, key: str, url: str) -> bool:
        self.started.release()
        self.released.wait(timeout=60)  # a hang guard only: the test sets it
        self.claimed.append(key)
        return True

    def wait_for_held(self, count: int) -> None:
        for _ in range(count):
            assert self.started.acquire(timeout=30), "the claims never reached the database"


def test_a_hung_database_queues_at_most_claims_waiting_delivery_claims(
    store: str, start_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each claim stuck on a hung database used to leave every later delivery's claim queued behind it, without
    end: memory grew, and claims queued minutes ago ran long after Slack had retried. Past the bound a delivery
    is answered without a claim, and the log says so."""
    import bot.guards

    claims = HungClaims()
    monkeypatch.setattr(bot.guards, "claim", claims)
    monkeypatch.setattr(bot.guards, "CLAIMS_WAITING", bot.guards.CLAIM_THREADS + 2)
    monkeypatch.setattr(bot.guards, "CLAIM_TIMEOUT_S", 0.01)  # each request gives up on its claim at once
    running = start_bot(store)
    beyond = 3
    events = [f"EvCLAIM{n:03d}" for n in range(bot.guards.CLAIMS_WAITING + beyond)]
    try:
        with capture_logs() as logs:
            for event_id in events:
                reaction = {"type": "reaction_added", "user": "UALICE", "reaction": "eyes", "event_ts": "1.2"}
                assert running.send.event(reaction, event_id=event_id).status_code == 200
        claims.wait_for_held(bot.guards.CLAIM_THREADS)  # every claim thread is held by the hung database
        full = [entry for entry in logs if entry["event"].startswith("delivery not checked for a retry")]
        assert len(full) == beyond
    finally:
        claims.released.set()
    # Once the database answers, the claims it held and the ones queued within the bound run, and no others.
    wait_until(lambda: len(claims.claimed) == bot.guards.CLAIMS_WAITING, "the queued claims never ran")
    assert sorted(claims.claimed) == events[: bot.guards.CLAIMS_WAITING]


def test_stopping_drops_the_claims_still_queued_and_ends_the_claim_threads(
    store: str, start_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim pool was never shut down at a stop: the claims queued behind a hung database still ran once it
    answered, long after their requests were answered, and its threads outlived the server."""
    import bot.guards
    from bot.app import finish_acked_replies

    claims = HungClaims()
    monkeypatch.setattr(bot.guards, "claim", claims)
    monkeypatch.setattr(bot.guards, "CLAIM_TIMEOUT_S", 0.01)  # each request gives up on its claim at once
    before = set(threading.enumerate())
    running = start_bot(store)
    events = [f"EvSTOP{n:03d}" for n in range(bot.guards.CLAIM_THREADS + 2)]
    try:
        for event_id in events:
            reaction = {"type": "reaction_added", "user": "UALICE", "reaction": "eyes", "event_ts": "1.2"}
            assert running.send.event(reaction, event_id=event_id).status_code == 200
        claims.wait_for_held(bot.guards.CLAIM_THREADS)  # every claim thread is held by the hung database, two wait
        finish_acked_replies(running.app, grace_s=0)  # what SIGTERM runs, with its grace already spent
    finally:
        claims.released.set()
    wait_until(lambda: not [thread for thread in threading.enumerate()
                            if thread not in before and thread.name.startswith("culprit-claim")],
               "the claim threads outlived the stop")  # fmt: skip
    assert sorted(claims.claimed) == events[: bot.guards.CLAIM_THREADS], "only the claims already running ran"
