"""A Chroma server on loopback that answers its heartbeat and then stalls: enough of Chroma's v2 REST API
for ``chromadb.HttpClient`` to connect and open a collection, and every request a test names left
unanswered until the test ends, as a Chroma stuck on a slow disk or a lock would leave it, or answered
without end, a chunk at a time, as a sick server or proxy might trickle it."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

from tests.loopback import JsonHandler, LoopbackServer

_DATABASE_ID = str(uuid.uuid4())
_COLLECTION_ID = str(uuid.uuid4())


def _answer(method: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """What a healthy Chroma answers to the requests a client makes before its first query, else None."""
    if path == "/api/v2/heartbeat":
        return {"nanosecond heartbeat": 1}
    if path == "/api/v2/auth/identity":
        return {"user_id": "", "tenant": "default_tenant", "databases": ["default_database"]}
    if path == "/api/v2/tenants/default_tenant":
        return {"name": "default_tenant"}
    if path == "/api/v2/tenants/default_tenant/databases/default_database":
        return {"id": _DATABASE_ID, "name": "default_database", "tenant": "default_tenant"}
    if method == "POST" and path == "/api/v2/tenants/default_tenant/databases/default_database/collections":
        return {"id": _COLLECTION_ID, "name": body["name"], "configuration_json": body["configuration"],
                "metadata": None, "dimension": None, "tenant": "default_tenant", "database": "default_database"}  # fmt: skip
    return None


def _never(method: str, path: str) -> bool:
    return False


class StallingChroma:
    """``with StallingChroma(stalls) as url:``; a request for which ``stalls(method, path)`` is true (or
    that a healthy Chroma's first requests do not cover) gets no answer until the block ends. One for which
    ``trickles(method, path)`` is true is answered 200 with ``chunk`` every ``interval`` seconds, without
    end, until the client hangs up (``hung_up`` is set then) or the block ends. One for which
    ``echoes(method, path)`` is true is answered 500 with an error quoting the request's body."""

    def __init__(
        self,
        stalls: Callable[[str, str], bool] = _never,
        trickles: Callable[[str, str], bool] = _never,
        chunk: bytes = b" ",
        interval: float = 0.02,
        echoes: Callable[[str, str], bool] = _never,
    ) -> None:
        self.stalled = threading.Event()  # set when a request arrived and was left unanswered
        self.stalled_paths: list[str] = []
        self.hung_up = threading.Event()
        self._released = threading.Event()
        fake = self

        class Handler(JsonHandler):
            def answer(self, method: str) -> None:
                path = self.path.split("?")[0]
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if trickles(method, path):
                    self.trickle()
                    return
                if echoes(method, path):  # a sick server's error quoting the request it refused
                    self.send_json(500, {"error": "InternalError", "message": f"cannot answer {json.dumps(body)}"})
                    return
                answer = _answer(method, path, body)
                if answer is None or stalls(method, path):
                    fake.stalled_paths.append(f"{method} {path}")
                    fake.stalled.set()
                    fake._released.wait()
                    return
                self.send_json(200, answer)

            def trickle(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()  # HTTP/1.0 and no length: the answer ends when the server closes
                try:
                    self.wfile.write(b'{"ids": [')
                    while not fake._released.wait(interval):
                        self.wfile.write(chunk)
                except OSError:  # the client hung up
                    fake.hung_up.set()

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                self.answer("GET")

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                self.answer("POST")

        self._server = LoopbackServer(Handler)

    def __enter__(self) -> str:
        return self._server.url

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        self._server.close()
