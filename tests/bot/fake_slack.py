"""A small stand-in for Slack's Web API on loopback, recording every call.

It answers the methods culprit uses the way Slack does (``ok``, ``ts``,
``channel``...), including the three steps of ``files_upload_v2`` and the
``response_url`` webhooks, so the real ``slack_sdk`` client talks to it
unchanged via ``CULPRIT_SLACK_API_URL=http://127.0.0.1:PORT/api/``. A double
because tests cannot reach slack.com, and Slack offers no local server. An
error in a handler thread fails the test waiting on the fake, or the test's
teardown.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

BOT_USER_ID = "UCULPRIT"
BOT_ID = "BCULPRIT"
TEAM_ID = "T0001"
# What a token of an app installed from manifest.yml is granted (Slack lists them in x-oauth-scopes).
MANIFEST_SCOPES = (
    "commands", "chat:write", "app_mentions:read", "channels:read", "groups:read",
    "channels:history", "groups:history", "files:write", "channels:join",
)


@dataclass
class SlackCall:
    """One request the bot made: the API method (or ``upload``/``response_url``) and its arguments."""

    method: str
    args: dict[str, Any]
    at: float
    body: bytes = b""
    response: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeSlack:
    """The recorded calls plus what the fake knows about the workspace (channel names, errors to give)."""

    channel_names: dict[str, str] = field(default_factory=dict)
    channel_creators: dict[str, str] = field(default_factory=dict)
    channel_topics: dict[str, str] = field(default_factory=dict)
    # Messages of each channel, newest first, as conversations.history returns them.
    channel_history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    not_in_channels: set[str] = field(default_factory=set)
    # Methods answered with an error every time (a scope the token lacks: {"files.getUploadURLExternal": "missing_scope"}).
    refused: dict[str, str] = field(default_factory=dict)
    # How many more times each method is answered 429 (with ``retry_after``), as a busy workspace does.
    rate_limited: dict[str, int] = field(default_factory=dict)
    retry_after: str = "0"
    # The share of each method's calls answered 429, spread evenly (0.2: every fifth call), for load runs.
    rate_limited_share: dict[str, float] = field(default_factory=dict)
    _seen: dict[str, int] = field(default_factory=dict)
    # The scopes the token holds, sent in the x-oauth-scopes header as Slack does.
    scopes: tuple[str, ...] = MANIFEST_SCOPES
    # When set, any other bearer token is answered invalid_auth, as Slack answers a wrong token.
    valid_token: str | None = None
    calls: list[SlackCall] = field(default_factory=list)
    # What apps.connections.open hands out: the fake Socket Mode server's ws:// URL.
    socket_mode_url: str = ""
    errors: list[BaseException] = field(default_factory=list)
    # Called with each Web API method and its arguments before it is answered: something that happens
    # in the world while Slack handles the call (the database going down, say).
    before_answer: Callable[[str, dict[str, Any]], None] | None = None
    base_url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, call: SlackCall) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def fail(self, error: BaseException) -> None:
        """Keep an error raised in a handler thread, so the test that is waiting sees it."""
        with self._changed:
            self.errors.append(error)
            self._changed.notify_all()

    def raise_errors(self) -> None:
        with self._changed:
            if self.errors:
                raise AssertionError(f"the fake Slack API failed while handling a call: {self.errors[0]!r}") from self.errors[0]

    def calls_to(self, method: str) -> list[SlackCall]:
        with self._changed:
            return [call for call in self.calls if call.method == method]

    def wait_for(
        self, predicate: Callable[[SlackCall], bool], count: int = 1, timeout: float = 30.0
    ) -> list[SlackCall]:
        """Block until ``count`` recorded calls satisfy ``predicate``; fail loudly otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                self.raise_errors()
                matching = [call for call in self.calls if predicate(call)]
                if len(matching) >= count:
                    return matching
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(call.method, str(call.args)[:200]) for call in self.calls]
                    raise AssertionError(f"expected {count} matching Slack calls within {timeout}s; saw {seen}")
                self._changed.wait(left)

    def take_rate_limit(self, method: str) -> bool:
        """True (and one fewer left) while ``method`` is still to be rate-limited."""
        with self._lock:
            left = self.rate_limited.get(method, 0)
            if left:
                self.rate_limited[method] = left - 1
            share = self.rate_limited_share.get(method, 0.0)
            seen = self._seen[method] = self._seen.get(method, 0) + 1
            return bool(left) or int(seen * share) > int((seen - 1) * share)

    def next_ts(self) -> str:
        with self._lock:
            return f"{int(time.time())}.{next(self._ts):06d}"

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """Slack's reply for one Web API method."""
        channel = args.get("channel", "")
        if method in self.refused:
            return {"ok": False, "error": self.refused[method]}
        if method in {"chat.postMessage", "chat.update"} and _breaks_block_kit(args.get("blocks")):
            return {"ok": False, "error": "invalid_blocks"}
        if method in {"chat.postMessage", "chat.update"} and len(args.get("text") or "") > 40_000:
            return {"ok": False, "error": "msg_too_long"}
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://culprit-test.slack.com/",
                "team": "culprit-test",
                "user": "culprit",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method in {"chat.postMessage", "chat.update", "chat.postEphemeral"} and channel in self.not_in_channels:
            return {"ok": False, "error": "not_in_channel"}
        if method == "chat.postMessage":
            ts = self.next_ts()
            message = {"type": "message", "text": args.get("text", ""), "ts": ts, "bot_id": BOT_ID}
            if args.get("blocks"):
                message["blocks"] = args["blocks"]
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "chat.update":
            return {"ok": True, "channel": channel, "ts": args.get("ts"), "text": args.get("text", "")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self.next_ts()}
        if method == "apps.connections.open":
            if not self.socket_mode_url:
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"ok": True, "url": self.socket_mode_url}
        if method == "conversations.info":
            name = self.channel_names.get(channel)
            if name is None:
                return {"ok": False, "error": "channel_not_found"}
            info = {"id": channel, "name": name, "is_channel": True, "is_member": channel not in self.not_in_channels}
            if channel in self.channel_creators:
                info["creator"] = self.channel_creators[channel]
            if channel in self.channel_topics:
                info["topic"] = {"value": self.channel_topics[channel]}
                info["purpose"] = {"value": ""}
            return {"ok": True, "channel": info}
        if method == "conversations.join":
            if channel not in self.channel_names:
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "channel": {"id": channel, "name": self.channel_names[channel]}}
        if method == "conversations.history":
            return {"ok": True, "messages": list(self.channel_history.get(channel, [])), "has_more": False}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts):08d}"
            return {"ok": True, "upload_url": f"{self.base_url}upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = args.get("files") or "[]"
            listed = json.loads(files) if isinstance(files, str) else files
            return {"ok": True, "files": [{"id": item["id"], "title": item.get("title", "")} for item in listed]}
        return {"ok": False, "error": "unknown_method"}


def _breaks_block_kit(blocks: Any) -> bool:
    """Slack refuses a message of more than 50 blocks, or with a section whose text is over 3,000 characters."""
    listed = json.loads(blocks) if isinstance(blocks, str) else blocks or []
    sections = [block.get("text") or {} for block in listed if block.get("type") == "section"]
    return len(listed) > 50 or any(len(text.get("text", "")) > 3000 for text in sections)


def _decode(handler: BaseHTTPRequestHandler, body: bytes) -> dict[str, Any]:
    """Arguments from the query string, a form body or a JSON body, as slack_sdk sends them."""
    args: dict[str, Any] = dict(parse_qsl(urlparse(handler.path).query))
    content_type = handler.headers.get("Content-Type", "")
    if body and "json" in content_type:
        args.update(json.loads(body))
    elif body and "x-www-form-urlencoded" in content_type:
        args.update(parse_qsl(body.decode()))
    for key in ("blocks", "attachments"):
        if isinstance(args.get(key), str):
            args[key] = json.loads(args[key])
    return args


def _handler_for(slack: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            try:
                self._handle()
            except Exception as error:  # ThreadingHTTPServer would only print it
                slack.fail(error)
                self._reply(500, b"fake Slack failed", "text/plain")

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = urlparse(self.path).path
            if path.startswith("/upload/"):
                slack.record(SlackCall("upload", {"file_id": path.rsplit("/", 1)[1]}, time.time(), body))
                self._reply(200, b"OK - " + str(len(body)).encode(), "text/plain")
                return
            if path.startswith("/response/"):
                slack.record(SlackCall("response_url", _decode(self, body), time.time(), body))
                self._reply(200, b"ok", "text/plain")
                return
            method = path.removeprefix("/api/")
            args = _decode(self, body)
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                self._reply(200, json.dumps({"ok": False, "error": "not_authed"}).encode(), "application/json")
                return
            if slack.valid_token and self.headers["Authorization"] != f"Bearer {slack.valid_token}":
                slack.record(SlackCall("invalid_auth:" + method, args, time.time(), body))
                self._reply(200, json.dumps({"ok": False, "error": "invalid_auth"}).encode(), "application/json")
                return
            if slack.take_rate_limit(method):
                slack.record(SlackCall("rate_limited:" + method, args, time.time(), body))
                self._reply(429, json.dumps({"ok": False, "error": "ratelimited"}).encode(), "application/json", {"Retry-After": slack.retry_after})
                return
            if slack.before_answer is not None:
                slack.before_answer(method, args)
            answer = slack.answer(method, args)
            slack.record(SlackCall(method, args, time.time(), body, answer))
            scopes = {"x-oauth-scopes": ",".join(slack.scopes)} if method == "auth.test" else None
            self._reply(200, json.dumps(answer).encode(), "application/json", scopes)

        def _reply(self, status: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


class FakeSlackServer:
    """Runs :class:`FakeSlack` on 127.0.0.1 on a free port until stopped."""

    def __init__(self, slack: FakeSlack | None = None) -> None:
        self.slack = slack or FakeSlack()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self.slack))
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.root_url = f"http://127.0.0.1:{port}/"
        self.api_url = f"{self.root_url}api/"
        self.slack.base_url = self.root_url
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-slack", daemon=True)

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self.slack

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if exc_type is None:  # the test passed so far: fail it for an error the fake swallowed
            self.slack.raise_errors()

    def response_url(self, name: str) -> str:
        return f"{self.root_url}response/{name}"
