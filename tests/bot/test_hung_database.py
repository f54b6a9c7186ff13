"""A database that stops answering stalls /healthz and /metrics, never the rest of the server.

The database is :class:`~tests.bot.silent_database.SilentDatabase`: every
connection hangs until the test ends. Each step waits for the positive signal
that the bot is stuck on it (a connection accepted), then checks that Slack's
URL verification, which needs the event loop and a worker thread, is still
answered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from bot import report_intake, reports_http
from bot.app import finish_acked_replies
from bot.incident_webhooks import DATABASE_THREADS
from bot.replies import RESTARTING
from bot.reply_queue import ReplyQueue
from bot.reports_http import CONCURRENT_WRITES
from bot.server import PROBE_THREADS
from bot.sources_http import STORE_THREADS
from knowledge.db import utcnow
from tests.bot.conftest import INCIDENT_CHANNEL, Bot, StartBot
from tests.bot.silent_database import SilentDatabase

PD_SECRET = "pd-webhook-secret"
CLIENT_TIMEOUT_S = 60  # a safety net so a stalled server fails the test instead of hanging it
STUCK_HEALTH_CHECKS = 45  # more than anyio's default 40 worker threads


def _in_background(request: Callable[[], httpx.Response], answers: list[httpx.Response]) -> threading.Thread:
    def run() -> None:
        try:
            answers.append(request())
        except httpx.HTTPError:
            pass  # the server went away at the end of the test
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _slack_still_answers(bot: Bot) -> None:
    challenge = bot.send.post(json.dumps({"token": "t", "type": "url_verification", "challenge": "still-here"}), "application/json")
    assert challenge.status_code == 200 and "still-here" in challenge.text


def _pagerduty_trigger(bot: Bot, incident: str = "PINC1") -> httpx.Response:
    event = {"id": f"EV-{incident}", "event_type": "incident.triggered", "occurred_at": utcnow().isoformat(),
             "data": {"id": incident, "title": "payments down", "service": {"summary": "payments"}}}
    body = json.dumps({"event": event}).encode()
    signature = "v1=" + hmac.new(PD_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return httpx.post(f"{bot.url}/webhooks/pagerduty", content=body, headers={"X-PagerDuty-Signature": signature},
                      timeout=CLIENT_TIMEOUT_S)


def test_a_hung_database_stalls_only_health_and_metrics(data_dir, start_bot: StartBot) -> None:
    answers: list[httpx.Response] = []
    waiting: list[threading.Thread] = []
    with SilentDatabase() as database:
        bot = start_bot(database.url, env={"CULPRIT_PAGERDUTY_WEBHOOK_SECRET": PD_SECRET,
                                           "CULPRIT_INCIDENT_POST_CHANNEL": INCIDENT_CHANNEL})
        bot.send.http.timeout = httpx.Timeout(CLIENT_TIMEOUT_S)

        # A scrape reads the sources' lag from the database: it waits, the event loop must not.
        waiting.append(_in_background(lambda: httpx.get(f"{bot.url}/metrics", timeout=None), answers))
        database.wait_for_connections(1)
        _slack_still_answers(bot)

        # So does a PagerDuty trigger reading the service catalog.
        waiting.append(_in_background(lambda: _pagerduty_trigger(bot), answers))
        database.wait_for_connections(2)
        _slack_still_answers(bot)

        # A load balancer polling /healthz on a hung database holds at most PROBE_THREADS threads;
        # the rest of its checks queue without one, so Slack's requests still find a worker thread.
        checks: list[httpx.Response] = []
        for _ in range(STUCK_HEALTH_CHECKS):
            waiting.append(_in_background(lambda: httpx.get(f"{bot.url}/healthz", timeout=None), checks))
        database.wait_for_connections(2 + PROBE_THREADS)
        _slack_still_answers(bot)
        assert database.connections == 2 + PROBE_THREADS
        assert answers == [] and checks == []  # every one of them is still waiting on the database
    for thread in waiting:  # the database is gone now: each waiting request fails and is answered
        thread.join(timeout=CLIENT_TIMEOUT_S)
    assert [check.status_code for check in checks] == [503] * STUCK_HEALTH_CHECKS


STUCK_DELIVERIES = 45  # more than anyio's default 40 worker threads


def _report_batch(bot: Bot, number: int) -> httpx.Response:
    return httpx.post(f"{bot.url}/reports", json=[{"id": f"r-{number}", "text": "the app crashes when I open my cart"}],
                      headers={"Authorization": "Bearer reports-token-4e7a"}, timeout=CLIENT_TIMEOUT_S)  # fmt: skip


def _change_event(bot: Bot, number: int) -> httpx.Response:
    event = {"id": f"flag-{number}", "kind": "flag", "service": "checkout", "title": "new_checkout_flow on", "time": utcnow().isoformat()}
    return httpx.post(f"{bot.url}/changes", json=[event], headers={"Authorization": "Bearer changes-token-4e7a"}, timeout=CLIENT_TIMEOUT_S)


def _numbered_pagerduty_trigger(bot: Bot, number: int) -> httpx.Response:
    return _pagerduty_trigger(bot, incident=f"PINC{number}")


# (route, how one delivery is sent, how many the route lets wait on the database at once)
BURSTS = [
    ("/reports", _report_batch, CONCURRENT_WRITES),
    ("/changes", _change_event, STORE_THREADS),
    ("/webhooks/pagerduty", _numbered_pagerduty_trigger, DATABASE_THREADS),
]


@pytest.mark.parametrize(("route", "send", "at_once"), BURSTS, ids=[route for route, _, _ in BURSTS])
def test_a_burst_of_deliveries_on_a_hung_database_leaves_slack_a_worker_thread(
    route: str, send: Callable[[Bot, int], httpx.Response], at_once: int, data_dir, start_bot: StartBot
) -> None:
    """Each delivery waiting for the database (or for its turn at it) used to hold a worker thread: a burst
    took every thread, and Slack's requests, dispatched on them, went unanswered until deliveries failed."""
    answers: list[httpx.Response] = []
    waiting: list[threading.Thread] = []
    with SilentDatabase() as database:
        bot = start_bot(database.url, env={"CULPRIT_REPORTS_TOKEN": "reports-token-4e7a", "CULPRIT_CHANGES_TOKEN": "changes-token-4e7a",
                                           "CULPRIT_PAGERDUTY_WEBHOOK_SECRET": PD_SECRET,
                                           "CULPRIT_INCIDENT_POST_CHANNEL": INCIDENT_CHANNEL})  # fmt: skip
        bot.send.http.timeout = httpx.Timeout(CLIENT_TIMEOUT_S)
        for number in range(STUCK_DELIVERIES):
            waiting.append(_in_background(lambda number=number: send(bot, number), answers))
        database.wait_for_connections(at_once)
        _slack_still_answers(bot)
        # Answered while every delivery still waits: some on the database, the rest for their turn, not a thread.
        assert database.connections == at_once
        assert answers == []
    for thread in waiting:
        thread.join(timeout=CLIENT_TIMEOUT_S)


@pytest.mark.timeout(120)  # a hang guard only: with every worker thread parsing, Slack would wait for good
def test_a_burst_of_report_batches_being_parsed_leaves_slack_a_worker_thread(
    store: str, start_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 5 MiB batch takes a while to parse; here every parse is held until Slack has answered."""
    parsing, parse_may_finish = threading.Semaphore(0), threading.Event()
    parse = reports_http.json_body

    def held_parse(body: bytes) -> object:
        parsing.release()
        parse_may_finish.wait()
        return parse(body)

    read, all_read = reports_http.read_body, threading.Semaphore(0)

    async def counted_read(request: Any, limit: int) -> bytes:
        body = await read(request, limit)
        all_read.release()
        return body

    monkeypatch.setattr(reports_http, "json_body", held_parse)
    monkeypatch.setattr(reports_http, "read_body", counted_read)
    bot = start_bot(store, env={"CULPRIT_REPORTS_TOKEN": "reports-token-4e7a"})
    answers: list[httpx.Response] = []
    waiting = [_in_background(lambda number=number: _report_batch(bot, number), answers) for number in range(STUCK_DELIVERIES)]
    try:
        for _ in range(STUCK_DELIVERIES):  # every batch has arrived, and is being parsed or waits to be
            assert all_read.acquire(timeout=30), "the batches never arrived"
        for _ in range(reports_http.PARSE_THREADS):
            assert parsing.acquire(timeout=30), "the batches were never parsed"
        _slack_still_answers(bot)
        assert answers == []  # answered while every batch was still being parsed or waiting for its turn
    finally:
        parse_may_finish.set()  # also on failure, so the server can finish
    for thread in waiting:
        thread.join(timeout=CLIENT_TIMEOUT_S)
    assert sorted(answer.status_code for answer in answers) == [200] * STUCK_DELIVERIES


@pytest.mark.timeout(120)  # a hang guard only: the old stop waited out each acked reply on the hung database
def test_stopping_on_a_hung_database_turns_away_the_replies_not_started(
    data_dir, start_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM used to wait for every acked reply: each queued one read the hung database in turn and waited out
    its 60 s time-out, holding the stop for minutes. Past the grace, those not started are told to ask again."""
    import bot.guards

    monkeypatch.setattr(bot.guards, "CLAIM_TIMEOUT_S", 0.01)  # each command gives up on its hung claim at once
    with SilentDatabase() as database:
        running = start_bot(f"{database.url}?connect_timeout=0", replies=ReplyQueue(capacity=5, runners=1))  # libpq waits for ever
        acks = [running.send.command(f"checkout is down {number}", user=f"UONCALL{number}") for number in range(3)]
        assert [ack.json()["response_type"] for ack in acks] == ["in_channel"] * 3
        database.wait_for_connections(3 + 1)  # the three commands' claims, and the first reply reading the catalog
        with capture_logs() as logs:
            finish_acked_replies(running.app, grace_s=0)  # what SIGTERM runs, with its grace already spent
        told = [call.args["text"] for call in running.posted(channel=INCIDENT_CHANNEL)]
        assert told == [RESTARTING, RESTARTING]
        events = {entry["event"]: entry for entry in logs if entry.get("queue") == "reply"}
        assert events["replies not started before the shutdown grace ran out: turned away"]["count"] == 2
        assert events["replies still running when the shutdown grace ran out: given up"]["count"] == 1


@pytest.mark.timeout(120)  # a hang guard only: the old stop waited for every report's last try on the hung database
def test_stopping_on_a_hung_database_gives_up_the_slack_reports_not_stored_within_the_grace(
    data_dir, start_bot: StartBot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGTERM waited for each Slack report handed over to make its last try: on a hung database each one
    waited out its connect time-out in turn (for ever without one). Past the grace they are given up by id."""
    import bot.guards

    monkeypatch.setattr(bot.guards, "CLAIM_TIMEOUT_S", 0.01)  # each message gives up on its hung claim at once
    monkeypatch.setattr(report_intake, "configured_classifier", lambda settings: None)  # storing is what is tested
    with SilentDatabase() as database:
        running = start_bot(f"{database.url}?connect_timeout=0", env={"CULPRIT_REPORTS_CHANNEL": "user-feedback"})
        messages = [{"type": "message", "channel": "CREPORTS", "user": "UCUSTOMER", "ts": f"17145564{n:02d}.000100",
                     "text": f"Rosalind Featherstonehaugh can't pay {n}"} for n in range(3)]  # fmt: skip
        for message in messages:
            assert running.send.event(message).status_code == 200
        database.wait_for_connections(3 + 1)  # the three messages' claims, and the first report waiting to be stored
        with capture_logs() as logs:
            finish_acked_replies(running.app, grace_s=0)  # what SIGTERM runs, with its grace already spent
            report_intake.finish_intake(grace_s=0)
    given_up = [entry for entry in logs if entry["event"] == "reports from slack not stored at shutdown: the grace ran out first"]
    report_ids = [f"slack:CREPORTS:{message['ts']}" for message in messages]
    assert [(entry["count"], entry["report_ids"]) for entry in given_up] == [(3, report_ids)]
    assert not [entry for entry in logs if "Featherstonehaugh" in str(entry)], "a log kept a report's text"
    assert not [record for record in caplog.records if record.name == "concurrent.futures"], "a dropped report's callback failed"


@pytest.mark.timeout(120)  # a hang guard only: the old stop waited for Bolt's listener threads without a limit
def test_stopping_on_a_hung_database_gives_up_a_listener_still_waiting_on_it(data_dir, start_bot: StartBot) -> None:
    """SIGTERM waited for every Bolt listener thread to finish, with no time limit: a vote, stored in its
    listener's thread, waited on the hung database for as long as it hung, and so did the stop."""
    with SilentDatabase() as database:
        running = start_bot(f"{database.url}?connect_timeout=0")  # libpq waits for ever
        message = {"ts": "1714556400.000200", "text": "culprit", "blocks": []}
        assert running.send.click("feedback_up", "101", user="UONCALL", channel=INCIDENT_CHANNEL, message=message).status_code == 200
        database.wait_for_connections(1)  # the vote's listener waits on the database
        with capture_logs() as logs:
            finish_acked_replies(running.app, grace_s=0)  # what SIGTERM runs, with its grace already spent
        assert [entry["grace_s"] for entry in logs
                if entry["event"] == "slack listeners still running when the shutdown grace ran out: given up"] == [0]
