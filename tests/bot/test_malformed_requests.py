"""Requests no honest sender makes: malformed signature headers, JSON nested without end, large bodies
with a guessed token, over real HTTP.

An attacker (or a misconfigured proxy) controls every header byte: a timestamp
that is not a number, a signature with bytes outside ASCII. Each is a forgery
like any other, refused with 401 and its reason, never a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import httpx
import pytest
from structlog.testing import capture_logs

from tests.bot.conftest import INCIDENT_CHANNEL, Bot, StartBot
from tests.bot.raw_http import send_chunked
from tests.bot.slack_requests import SIGNING_SECRET
from tests.sources.upstream import GITLAB_TOKEN, WEBHOOK_SECRET
from tools.reports.digest import RELABEL_ACTION

PD_SECRET = "pd-webhook-secret"
GENERIC_SECRET = "incidents-secret"
SECRETS = {
    "CULPRIT_PAGERDUTY_WEBHOOK_SECRET": PD_SECRET,
    "CULPRIT_INCIDENT_POST_CHANNEL": INCIDENT_CHANNEL,
    "CULPRIT_INCIDENTS_WEBHOOK_SECRET": GENERIC_SECRET,
    "CULPRIT_GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "CULPRIT_GITLAB_WEBHOOK_TOKEN": GITLAB_TOKEN,
    "CULPRIT_CHANGES_TOKEN": "changes-token-4e7a",
    "CULPRIT_REPORTS_TOKEN": "reports-token-4e7a",
    "CULPRIT_METRICS_TOKEN": "metrics-token-4e7a",
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


def _hmac(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def _signed(path: str, body: bytes) -> dict[str, str]:
    """The headers that make ``body`` a trusted delivery to ``path``."""
    now = str(int(time.time()))
    return {
        "/webhooks/pagerduty": {"X-PagerDuty-Signature": "v1=" + _hmac(PD_SECRET, body)},
        "/incidents": {"X-Culprit-Request-Timestamp": now,
                       "X-Culprit-Signature": "v1=" + _hmac(GENERIC_SECRET, f"v1:{now}:".encode() + body)},
        "/webhooks/github": {"X-Hub-Signature-256": "sha256=" + _hmac(WEBHOOK_SECRET, body),
                             "X-GitHub-Event": "push", "X-GitHub-Delivery": "deep-1"},
        "/webhooks/gitlab": {"X-Gitlab-Token": GITLAB_TOKEN, "X-Gitlab-Event-UUID": "deep-1"},
        "/changes": {"Authorization": "Bearer changes-token-4e7a"},
        "/reports": {"Authorization": "Bearer reports-token-4e7a"},
    }[path]


JSON_ENDPOINTS = ["/webhooks/pagerduty", "/incidents", "/webhooks/github", "/webhooks/gitlab", "/changes", "/reports"]
DEEP = 100_000  # levels: far past Python's recursion limit, and within the smallest body cap (256 KiB)


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [b"[" * DEEP + b"]" * DEEP, b'{"event": ' + b'{"a":' * (DEEP // 4) + b"1" + b"}" * (DEEP // 4) + b"}", b"[" * DEEP],
    ids=["arrays", "objects-in-an-object", "unclosed"],
)
def test_deeply_nested_json_is_refused_before_it_is_parsed(bot: Bot, path: str, body: bytes) -> None:
    response = httpx.post(f"{bot.url}{path}", content=body, headers={"Content-Type": "application/json", **_signed(path, body)})
    assert response.status_code == 400
    assert "JSON nested too deep" in response.json()["error"]


@pytest.mark.parametrize(("path", "credentials"), [("/changes", {"Authorization": "Bearer guessed"}),
                                                    ("/webhooks/gitlab", {"X-Gitlab-Token": "guessed"}),
                                                    ("/reports", {"Authorization": "Bearer guessed"})])
def test_a_wrong_token_is_refused_before_the_body_is_read(bot: Bot, path: str, credentials: dict[str, str]) -> None:
    # 64 MiB offered against a 5 MiB cap: reading the body first would answer 413, not 401.
    status, sent = send_chunked(f"{bot.url}{path}", {"Content-Type": "application/json", **credentials}, 64 * 1024 * 1024)
    assert status == 401
    assert sent < 32 * 1024 * 1024


@pytest.mark.parametrize("signed", [False, True], ids=["forged", "signed-over-the-bytes"])
def test_a_slack_body_that_is_not_utf8_is_refused_with_its_reason(bot: Bot, signed: bool) -> None:
    """slack_sdk's verifier decodes the body before it checks the signature: anyone could make it raise (500)."""
    body, now = b'{"type": "event_callback", "event": "\xff\xfe"}', str(int(time.time()))
    signature = "v0=" + (_hmac(SIGNING_SECRET, f"v0:{now}:".encode() + body) if signed else "0" * 64)
    response = httpx.post(f"{bot.url}/slack/events", content=body, headers={
        "Content-Type": "application/json", "X-Slack-Request-Timestamp": now, "X-Slack-Signature": signature})
    assert response.status_code == 401
    assert "not UTF-8" in response.json()["error"]


SLACK_DEEP = 10_000  # levels: past Python's recursion limit, within the 1 MiB Slack body cap


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"type": "event_callback", "event": [', "application/json"),
        ("[1, 2]", "application/json"),
        ("null", "application/json"),
        ("[" * SLACK_DEEP + "]" * SLACK_DEEP, "application/json"),
        (json.dumps({"type": "event_callback", "event": {"type": "app_mention", "channel": 5, "text": "hi", "ts": "1.1"}}), "application/json"),
        ("payload=%7Bnot+json", "application/x-www-form-urlencoded"),
        ("payload=" + "%5B" * SLACK_DEEP + "%5D" * SLACK_DEEP, "application/x-www-form-urlencoded"),
    ],
    ids=["truncated", "a-list", "null", "deep", "channel-a-number", "payload-not-json", "payload-deep"],
)
def test_a_signed_slack_body_bolt_cannot_read_is_refused_with_400(bot: Bot, body: str, content_type: str) -> None:
    """Only a holder of the signing secret can send these, but each was a 500 and a traceback per request."""
    response = bot.send.post(body, content_type)
    assert response.status_code == 400
    assert "not a Slack request" in response.json()["error"]
    assert httpx.get(f"{bot.url}/healthz").status_code == 200


def _click(**fields: object) -> dict:
    payload = {"type": "block_actions", "user": {"id": "UALICE"}, "container": {"channel_id": INCIDENT_CHANNEL, "message_ts": "1.1"},
               "channel": {"id": INCIDENT_CHANNEL}, "message": {"ts": "1.1", "blocks": []},
               "actions": [{"action_id": "feedback_up", "value": "1", "type": "button"}]}  # fmt: skip
    return {**payload, **fields}


RELABEL_MENU = {"action_id": RELABEL_ACTION, "type": "static_select", "options": [{"value": "r1\tlogin"}]}


def _relabel(selected: object, menu: object = RELABEL_MENU) -> dict:
    """A "Relabel as…" menu choice, clicked on a message whose one block carries ``menu``."""
    return _click(actions=[{"action_id": RELABEL_ACTION, "type": "static_select", "selected_option": selected}],
                  message={"ts": "1.1", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "r1"}, "accessory": menu}]})


COMMAND = {"command": "/rca", "text": "checkout down", "user_id": "UALICE", "channel_id": INCIDENT_CHANNEL, "trigger_id": "t1"}
WRONG_TYPES = [
    ("command", {"command": "/rca", "text": "checkout down", "user_id": "UALICE", "team_id": "T0001"}, "channel_id must be text"),
    ("json-command", {**COMMAND, "trigger_id": ["t1"]}, "trigger_id must be text"),
    ("json-command", {**COMMAND, "channel_name": 5}, "channel_name must be text"),
    ("json-command", {**COMMAND, "response_url": {}}, "response_url must be text"),
    ("event", {"type": "app_mention", "text": 5, "channel": INCIDENT_CHANNEL, "ts": "1.1", "user": "UALICE"}, "event.text must be text"),
    ("event", {"type": "app_mention", "text": "<@UCULPRIT> hi", "channel": INCIDENT_CHANNEL, "user": "UALICE"}, "event.ts must be text"),
    ("event", {"type": "app_mention", "text": None, "channel": INCIDENT_CHANNEL, "ts": "1.1", "user": "UALICE"}, "event.text must be text"),
    ("event", {"type": "app_mention", "text": "<@UCULPRIT> hi", "ts": "1.1", "user": "UALICE"}, "event.channel must be text"),
    ("event", {"type": "app_mention", "text": "<@UCULPRIT> checkout down", "channel": INCIDENT_CHANNEL, "ts": "1.1"}, "event.user must be text"),
    ("event", {"type": "channel_created", "channel": {"id": "CNEW", "name": ["inc-x"]}}, "event.channel.name must be text"),
    ("event", {"type": "channel_created", "channel": {"id": ["CNEW"], "name": "inc-x"}}, "event.channel.id must be text"),
    ("click", _click(container="x"), "container must be an object"),
    ("click", _click(container={"channel_id": 5, "message_ts": "1.1"}), "container.channel_id must be text"),
    ("click", _click(container={"channel_id": INCIDENT_CHANNEL, "message_ts": ["1.1"]}), "container.message_ts must be text"),
    ("click", _click(container={}, channel={"id": [INCIDENT_CHANNEL]}), "channel.id must be text"),
    ("click", _click(message={"ts": 5, "blocks": []}), "message.ts must be text"),
    ("click", _click(message={"ts": "1.1", "text": ["x"], "blocks": []}), "message.text must be text"),
    ("click", _click(user="UALICE", actions=[{"action_id": "rerun_channel", "value": "auto-1"}]), "user.id must be text"),
    ("click", _click(actions=[{"action_id": "feedback_up", "value": {"id": 1}}]), "actions[].value must be text"),
    ("click", _click(actions=[{"action_id": "feedback_up", "value": "1" * 2001}]), "actions[].value must be text of at most 2000 characters"),
    ("click", _click(message={"ts": "1.1", "blocks": "x"}), "message.blocks must be a list of objects"),
    # What Bolt reads itself, before any guard: each was a 500 and a traceback.
    ("click", _click(actions=[]), "actions must be a non-empty list of objects"),
    ("click", _click(actions=[{"value": "1", "type": "button"}]), "actions[].action_id must be text"),
    ("click", _click(actions=[{"action_id": 5, "value": "1", "type": "button"}]), "actions[].action_id must be text"),
    ("click", {"type": "interactive_message", "callback_id": "x", "user": {"id": "UALICE"}, "actions": []}, "actions must be a non-empty"),
    ("click", {"type": "view_submission", "user": {"id": "UALICE"}, "view": {"id": "V1", "callback_id": "x"}}, "view.type must be text"),
    ("click", {"type": "view_closed", "user": {"id": "UALICE"}, "view": "callback_id"}, "view must be an object"),
    ("event", {"type": 5}, "event.type must be text"),
    ("event", [{"type": "app_mention"}], "event must be an object"),
    ("event", "type", "event must be an object"),
    ("click", _relabel(None), "actions[].selected_option must be an object"),
    ("click", _relabel([{"value": "r1\tlogin"}]), "actions[].selected_option must be an object"),
    ("click", _relabel({"value": 5}), "actions[].selected_option.value must be text of at most 150 characters"),
    ("click", _relabel({"value": "r1\t" + "x" * 1_000_000}), "actions[].selected_option.value must be text of at most 150"),
    ("click", _relabel({"value": "r1\tlogin"}, "a menu"), "message.blocks[].accessory must be an object"),
    ("click", _relabel({"value": "r1\tlogin"}, {**RELABEL_MENU, "options": {"value": "r1\tlogin"}}), "accessory.options must be a list of objects"),
    ("click", _relabel({"value": "r1\tlogin"}, {**RELABEL_MENU, "options": ["r1\tlogin"]}), "accessory.options must be a list of objects"),
    ("click", _relabel({"value": "r1\tlogin"}, {**RELABEL_MENU, "options": [{"value": ["r1\tlogin"]}]}), "accessory.options[].value must be text"),
    # Slack's ids are short uppercase letters and digits: anything else was read, logged and stored as it came.
    ("command", {**COMMAND, "user_id": "U" * 100_000}, "user_id must be a Slack id"),
    ("json-command", {**COMMAND, "team_id": "t0001; drop"}, "team_id must be a Slack id"),
    ("event", {"type": "app_mention", "text": "hi", "channel": "c" * 1000, "ts": "1.1", "user": "UALICE"}, "event.channel must be a Slack id"),
    ("event", {"type": "message", "text": "hi", "channel": INCIDENT_CHANNEL, "ts": "1.1", "user": "U" * 33}, "event.user must be a Slack id"),
    ("event", {"type": "channel_created", "channel": {"id": "CNEW", "name": "inc-x", "creator": "ü"}}, "event.channel.creator must be a Slack id"),
    ("click", _click(user={"id": "U" * 100_000}), "user.id must be a Slack id"),
    ("click", _click(container={"channel_id": "", "message_ts": "1.1"}), "container.channel_id must be a Slack id"),
    # A click naming no channel had its failure notice ("could not store your vote") posted to channel "".
    ("click", _click(container={"message_ts": "1.1"}, channel={}), "a click must name its channel"),
    ("click", {k: v for k, v in _click(container={"message_ts": "1.1"}).items() if k != "channel"}, "a click must name its channel"),
    # Bolt echoes url_verification's challenge back as it came: an object, a list, megabytes of text.
    ("json", {"type": "url_verification", "token": "t", "challenge": {"nested": ["x"] * 1000}}, "challenge must be text"),
    ("json", {"type": "url_verification", "token": "t", "challenge": ""}, "challenge must be text"),
    ("json", {"type": "url_verification", "token": "t"}, "challenge must be text"),
    ("json", {"type": "url_verification", "token": "t", "challenge": "c" * 500_000}, "challenge must be text of at most 100 characters"),
]


@pytest.mark.parametrize(("kind", "payload", "named"), WRONG_TYPES, ids=[named for _, _, named in WRONG_TYPES])
def test_a_signed_slack_request_with_a_field_of_the_wrong_type_is_refused_naming_it(bot: Bot, kind: str, payload: dict, named: str) -> None:
    """Each was a listener raising (the fixture fails the test on that): a 500 for the command, a traceback otherwise."""
    if kind == "command":
        response = bot.send.post(urlencode(payload), "application/x-www-form-urlencoded")
    elif kind in ("json-command", "json"):  # a command as a Socket Mode payload carries it; an Events API body
        response = bot.send.post(json.dumps(payload), "application/json")
    elif kind == "event":
        response = bot.send.event(payload)
    else:
        response = bot.send.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert named in response.json()["error"]


def test_a_huge_user_id_is_refused_before_anything_logs_it(store: str, start_bot: StartBot) -> None:
    """Past the allow-list a 100,000-character user_id was logged in full, once per request."""
    bot = start_bot(store, env={"CULPRIT_ALLOWED_USERS": '["UALICE"]'})
    huge = "U" * 100_000
    with capture_logs() as logs:
        response = bot.send.post(urlencode({**COMMAND, "user_id": huge}), "application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json()["error"] == "user_id must be a Slack id (1 to 32 uppercase letters and digits)"
    assert [entry["event"] for entry in logs] == ["signed slack request refused: fields of the wrong type"]
    assert huge[:100] not in str(logs)
