"""Requests as Slack sends them: signed slash commands, events and button clicks.

Signatures are made with slack_sdk's own ``SignatureVerifier.generate_signature``,
the way Bolt's test suite does; ``sign_with`` and ``timestamp`` forge the rest.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from tests.bot.fake_slack import BOT_USER_ID, TEAM_ID

SIGNING_SECRET = "test-signing-secret"
_counter = itertools.count(1)


class SlackSender:
    def __init__(self, base_url: str, secret: str = SIGNING_SECRET, response_url: str = "") -> None:
        self.url = base_url.rstrip("/") + "/slack/events"
        self.secret = secret
        self.response_url = response_url
        self.http = httpx.Client(timeout=30)

    def close(self) -> None:
        self.http.close()

    def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        sign_with: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        timestamp = int(time.time()) if timestamp is None else timestamp
        signature = SignatureVerifier(sign_with or self.secret).generate_signature(
            timestamp=str(timestamp), body=body
        )
        sent = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature,
            **(headers or {}),
        }
        return self.http.post(self.url, content=body.encode(), headers=sent)

    def command_payload(
        self,
        text: str,
        *,
        user: str = "UALICE",
        channel: str = "CINC1",
        channel_name: str = "inc-checkout",
        trigger_id: str | None = None,
    ) -> dict[str, str]:
        """A slash command's fields: form-encoded over HTTP, the payload of a Socket Mode envelope."""
        return {
            "token": "legacy",
            "team_id": TEAM_ID,
            "channel_id": channel,
            "channel_name": channel_name,
            "user_id": user,
            "user_name": user.lower(),
            "command": "/rca",
            "text": text,
            "response_url": self.response_url,
            "trigger_id": trigger_id or f"trigger-{uuid.uuid4().hex}",
            "api_app_id": "ACULPRIT",
        }

    def command(
        self, text: str, *, timestamp: int | None = None, sign_with: str | None = None, **fields: Any
    ) -> httpx.Response:
        """A signed ``/rca``; ``fields`` as :meth:`command_payload` takes them."""
        form = self.command_payload(text, **fields)
        return self.post(urlencode(form), "application/x-www-form-urlencoded", timestamp=timestamp, sign_with=sign_with)

    @staticmethod
    def event_envelope(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        """An Events API callback: the JSON body over HTTP, the payload of a Socket Mode envelope."""
        return {
            "token": "legacy",
            "team_id": TEAM_ID,
            "api_app_id": "ACULPRIT",
            "type": "event_callback",
            "event": event,
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
        }

    def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None, **options: Any
    ) -> httpx.Response:
        envelope = self.event_envelope(event, event_id)
        headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"} if retry_num else {}
        return self.post(json.dumps(envelope), "application/json", headers=headers, **options)

    @staticmethod
    def mention_event(text: str, *, channel: str = "CINC1", user: str = "UALICE") -> dict[str, Any]:
        ts = f"{int(time.time())}.{next(_counter):06d}"
        return {
            "type": "app_mention",
            "user": user,
            "text": f"<@{BOT_USER_ID}> {text}",
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
        }

    def mention(self, text: str, *, channel: str = "CINC1", user: str = "UALICE", **options: Any) -> tuple[httpx.Response, str]:
        event = self.mention_event(text, channel=channel, user=user)
        event.update(options.pop("extra", {}))
        return self.event(event, **options), event["ts"]

    def select(
        self, action_id: str, value: str, *, user: str, channel: str, message: dict[str, Any]
    ) -> httpx.Response:
        """A choice in a ``static_select`` menu of a posted message."""
        return self.click(action_id, value, user=user, channel=channel, message=message, kind="static_select")

    def click_payload(
        self, action_id: str, value: str, *, user: str, channel: str, message: dict[str, Any], kind: str = "button"
    ) -> dict[str, Any]:
        """A button click (``block_actions``): ``payload=<json>`` over HTTP, the payload of a Socket Mode envelope."""
        return {
            "type": "block_actions",
            "team": {"id": TEAM_ID},
            "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
            "api_app_id": "ACULPRIT",
            "container": {
                "type": "message",
                "message_ts": message["ts"],
                "channel_id": channel,
                **({"thread_ts": message["thread_ts"]} if message.get("thread_ts") else {}),
            },
            "trigger_id": f"trigger-{uuid.uuid4().hex}",
            "channel": {"id": channel, "name": "inc-checkout"},
            "message": message,
            "response_url": self.response_url,
            "actions": [
                {
                    "type": kind,
                    "action_id": action_id,
                    "block_id": f"feedback-{value}",
                    "action_ts": str(time.time()),
                    **({"value": value} if kind == "button" else {"selected_option": {"text": {"type": "plain_text", "text": value}, "value": value}}),
                }
            ],
        }

    def click(
        self, action_id: str, value: str, *, user: str, channel: str, message: dict[str, Any], kind: str = "button"
    ) -> httpx.Response:
        payload = self.click_payload(action_id, value, user=user, channel=channel, message=message, kind=kind)
        return self.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
