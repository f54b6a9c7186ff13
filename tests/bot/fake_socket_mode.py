"""A local WebSocket server speaking Slack's Socket Mode envelope, for the bot's Socket Mode tests.

Slack's side of Socket Mode: ``apps.connections.open`` (answered by the fake
Web API with this server's ``ws://`` URL) hands out the URL; on connect the
server says ``hello``; each request is an envelope ``{"envelope_id", "type":
"slash_commands" | "events_api" | "interactive", "payload",
"accepts_response_payload", "retry_attempt", "retry_reason"}`` and the app
acks it with ``{"envelope_id"[, "payload"]}`` on the same socket (the ack's
payload is a slash command's immediate reply). Envelopes left unacked when
the app reconnects (a missed pong under load) are sent again on the new
connection, as Slack does. The real ``slack_sdk``
Socket Mode client that ``SocketModeHandler`` runs talks to it unchanged.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve


class FakeSocketMode:
    """Sends envelopes to the connected app and records its acks."""

    def __init__(self) -> None:
        self._server: Server = serve(self._session, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link"
        self.acks: dict[str, dict[str, Any]] = {}  # the first ack of each envelope
        self._sent: dict[str, str] = {}
        self.connections = 0
        self._connection: ServerConnection | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-socket-mode", daemon=True)

    def __enter__(self) -> FakeSocketMode:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    def _session(self, connection: ServerConnection) -> None:
        connection.send(json.dumps({
            "type": "hello",
            "num_connections": 1,
            "debug_info": {"host": "fake-socket-mode", "approximate_connection_time": 18060},
            "connection_info": {"app_id": "ACULPRIT"},
        }))
        with self._changed:
            self._connection = connection
            self.connections += 1
            # As Slack does: what an earlier connection left unacked comes again on the new one.
            for envelope_id, envelope in self._sent.items():
                if envelope_id not in self.acks:
                    connection.send(envelope)
            self._changed.notify_all()
        try:
            for message in connection:
                ack = json.loads(message)
                with self._changed:
                    self.acks.setdefault(ack["envelope_id"], ack)
                    self._changed.notify_all()
        except ConnectionClosed:
            pass

    def wait_connected(self, timeout: float = 120.0) -> None:
        self._wait(lambda: self._connection is not None, timeout, "the app never connected")

    def send(
        self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0, retry_reason: str = ""
    ) -> str:
        """Deliver one envelope as Slack does; returns its envelope id."""
        self.wait_connected()
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            **({"retry_attempt": retry_attempt, "retry_reason": retry_reason} if kind == "events_api" else {}),
        }
        with self._changed:
            assert self._connection is not None
            self._sent[envelope_id] = json.dumps(envelope)
            self._connection.send(self._sent[envelope_id])
        return envelope_id

    def ack(self, envelope_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Block until the app acked ``envelope_id``; its ack message."""
        self._wait(lambda: envelope_id in self.acks, timeout, f"envelope {envelope_id} was never acked")
        return self.acks[envelope_id]

    def _wait(self, done: Any, timeout: float, failure: str) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(failure)
                self._changed.wait(left)
