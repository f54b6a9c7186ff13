"""Requests no honest sender makes: malformed signature headers, over real HTTP.

An attacker (or a misconfigured proxy) controls every header byte: a timestamp
that is not a number, a signature with bytes outside ASCII. Each is a forgery
like any other, refused with 401 and its reason, never a 500.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.bot.conftest import INCIDENT_CHANNEL, Bot, StartBot
from tests.sources.upstream import GITLAB_TOKEN, WEBHOOK_SECRET

PD_SECRET = "pd-webhook-secret"
GENERIC_SECRET = "incidents-secret"
SECRETS = {
    "CULPRIT_PAGERDUTY_WEBHOOK_SECRET": PD_SECRET,
    "CULPRIT_INCIDENT_POST_CHANNEL": INCIDENT_CHANNEL,
    "CULPRIT_INCIDENTS_WEBHOOK_SECRET": GENERIC_SECRET,
    "CULPRIT_GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "CULPRIT_GITLAB_WEBHOOK_TOKEN": GITLAB_TOKEN,
    "CULPRIT_CHANGES_TOKEN": "changes-token",
    "CULPRIT_REPORTS_TOKEN": "reports-token",
    "CULPRIT_METRICS_TOKEN": "metrics-token",
}
NOW = b"<now>"  # replaced by the current unix time when sent, so only the malformed header is wrong
NOT_ASCII = b"v1=\xff\xfe\xb2"  # latin-1 bytes: a str of them makes hmac.compare_digest raise TypeError
SUPERSCRIPT_TWO = b"\xb2"  # '²'.isdigit() is True, yet int('²') raises ValueError

# (path, the headers that carry the malformed credential, what the refusal names)
MALFORMED = [
    ("/slack/events", {"X-Slack-Request-Timestamp": b"yesterday", "X-Slack-Signature": b"v0=00"}, "X-Slack-Request-Timestamp"),
    ("/slack/events", {"X-Slack-Request-Timestamp": SUPERSCRIPT_TWO, "X-Slack-Signature": b"v0=00"}, "X-Slack-Request-Timestamp"),
    ("/slack/events", {"X-Slack-Request-Timestamp": b"9" * 5000, "X-Slack-Signature": b"v0=00"}, "X-Slack-Request-Timestamp"),
    ("/slack/events", {"X-Slack-Signature": b"v0=00"}, "X-Slack-Request-Timestamp"),
    ("/slack/events", {"X-Slack-Request-Timestamp": NOW, "X-Slack-Signature": NOT_ASCII}, "X-Slack-Signature"),
    ("/slack/events", {"X-Slack-Request-Timestamp": NOW}, "X-Slack-Signature"),
    ("/webhooks/pagerduty", {"X-PagerDuty-Signature": NOT_ASCII}, "signature"),
    ("/incidents", {"X-Culprit-Request-Timestamp": SUPERSCRIPT_TWO, "X-Culprit-Signature": b"v1=00"}, "signature"),
    ("/incidents", {"X-Culprit-Request-Timestamp": b"9" * 5000, "X-Culprit-Signature": b"v1=00"}, "signature"),
    ("/incidents", {"X-Culprit-Request-Timestamp": NOW, "X-Culprit-Signature": NOT_ASCII}, "signature"),
    ("/webhooks/github", {"X-Hub-Signature-256": b"sha256=\xff"}, "X-Hub-Signature-256"),
    ("/webhooks/gitlab", {"X-Gitlab-Token": b"\xff\xfe"}, "X-Gitlab-Token"),
    ("/changes", {"Authorization": b"Bearer \xff"}, "Bearer"),
    ("/reports", {"Authorization": b"Bearer \xff"}, "bearer"),
]


@pytest.fixture
def bot(store: str, start_bot: StartBot) -> Bot:
    return start_bot(store, env=SECRETS)


@pytest.mark.parametrize(("path", "headers", "named"), MALFORMED, ids=[f"{p}-{n}-{i}" for i, (p, _, n) in enumerate(MALFORMED)])
def test_malformed_credentials_are_refused_with_their_reason(bot: Bot, path: str, headers: dict[str, bytes], named: str) -> None:
    body = json.dumps({"type": "event_callback", "event": {"type": "app_mention"}}).encode()
    headers = {name: str(int(time.time())).encode() if value == NOW else value for name, value in headers.items()}
    response = httpx.post(f"{bot.url}{path}", content=body, headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 401
    assert named in response.json()["error"]
    assert bot.slack.calls_to("chat.postMessage") == []


def test_a_malformed_metrics_token_is_refused(bot: Bot) -> None:
    response = httpx.get(f"{bot.url}/metrics", headers={"Authorization": b"Bearer \xff"})
    assert response.status_code == 401 and "bearer token" in response.json()["error"]
