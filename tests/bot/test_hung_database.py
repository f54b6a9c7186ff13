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

import httpx

from bot.reports_http import CONCURRENT_WRITES
from bot.server import PROBE_THREADS
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


def _pagerduty_trigger(bot: Bot) -> httpx.Response:
    event = {"id": "EV1", "event_type": "incident.triggered", "occurred_at": utcnow().isoformat(),
             "data": {"id": "PINC1", "title": "payments down", "service": {"summary": "payments"}}}
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


STUCK_REPORT_BATCHES = 45  # more than anyio's default 40 worker threads


def test_a_burst_of_reports_on_a_hung_database_leaves_slack_a_worker_thread(data_dir, start_bot: StartBot) -> None:
    """Each batch waiting for one of the CONCURRENT_WRITES writers used to hold a worker thread while it waited:
    a burst took every thread, and Slack's requests (dispatched on them) went unanswered."""
    answers: list[httpx.Response] = []
    waiting: list[threading.Thread] = []
    headers = {"Authorization": "Bearer reports-token"}
    with SilentDatabase() as database:
        bot = start_bot(database.url, env={"CULPRIT_REPORTS_TOKEN": "reports-token"})
        bot.send.http.timeout = httpx.Timeout(CLIENT_TIMEOUT_S)
        for number in range(STUCK_REPORT_BATCHES):
            batch = [{"id": f"r-{number}", "text": "the app crashes when I open my cart"}]
            waiting.append(_in_background(lambda batch=batch: httpx.post(f"{bot.url}/reports", json=batch, headers=headers,
                                                                          timeout=CLIENT_TIMEOUT_S), answers))  # fmt: skip
        database.wait_for_connections(CONCURRENT_WRITES)
        _slack_still_answers(bot)
        # Answered while every batch still waits: the writers on the database, the rest on a writer, not a thread.
        assert database.connections == CONCURRENT_WRITES
        assert answers == []
    for thread in waiting:
        thread.join(timeout=CLIENT_TIMEOUT_S)
