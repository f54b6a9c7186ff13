"""Real HTTP servers on 127.0.0.1 that play a sick LLM: nonsense, silence, or a relay that dies.

``MisbehavingLLM`` answers ``/v1/chat/completions`` the way a broken server
might; ``StoppableRelay`` forwards to the real vLLM server until it is stopped,
so a test can take the LLM away between two calls of one RCA (or after a
number of requests) without restarting vLLM.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from tests.loopback import LoopbackServer

Reply = Callable[[dict[str, Any]], tuple[int, bytes]]


def completion(content: str, top: list[tuple[str, float]] | None) -> dict[str, Any]:
    """A chat completion in OpenAI's shape, with first-token logprobs when ``top`` is given."""
    logprobs = None
    if top is not None:
        entries = [{"token": token, "logprob": logprob, "bytes": None} for token, logprob in top]
        logprobs = {"content": [{"token": content, "logprob": top[0][1], "bytes": None, "top_logprobs": entries}]}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "sick-llm",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": logprobs,
                "finish_reason": "stop",
            }
        ],
    }


def json_reply(payload: dict[str, Any], status: int = 200) -> Reply:
    return lambda _request: (status, json.dumps(payload).encode())


def raw_reply(body: bytes, status: int = 200) -> Reply:
    return lambda _request: (status, body)


def slow_reply(seconds: float, then: Reply) -> Reply:
    def reply(request: dict[str, Any]) -> tuple[int, bytes]:
        time.sleep(seconds)
        return then(request)

    return reply


class _Server(LoopbackServer):
    """A loopback server whose OpenAI-compatible API is under ``/v1``."""

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


class MisbehavingLLM(_Server):
    """Answers every POST with ``reply(request_json)`` and records the requests it saw."""

    def __init__(self, reply: Reply) -> None:
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(request)
                status, body = reply(request)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def log_message(self, *_args: Any) -> None:
                pass

        super().__init__(Handler)


class StoppableRelay(_Server):
    """Forwards to ``upstream``; after ``serve_requests`` requests it drops connections unanswered."""

    def __init__(self, upstream: str, serve_requests: int | None = None) -> None:
        self.served = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with owner.lock:
                    allowed = serve_requests is None or owner.served < serve_requests
                    owner.served += allowed
                if not allowed:  # the server "dies" with the request in flight
                    self.close_connection = True
                    self.connection.close()
                    return
                answer = httpx.post(
                    upstream + self.path.removeprefix("/v1"),
                    content=body,
                    headers={"Content-Type": "application/json"},
                    timeout=60,
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *_args: Any) -> None:
                pass

        super().__init__(Handler)


class EndlessLLM(_Server):
    """Answers every POST 200 with a chunked JSON body that never ends: ``chunk`` every ``interval`` seconds,
    until the client hangs up (``hung_up`` is set then) or the server closes. Sent with
    ``Content-Encoding: gzip`` when ``compressed``, as a proxy ignoring ``Accept-Encoding`` might."""

    def __init__(self, chunk: bytes, interval: float, compressed: bool = False) -> None:
        self.requests = 0
        self.hung_up = threading.Event()
        self._closed = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                if compressed:
                    self.send_header("Content-Encoding", "gzip")
                self.end_headers()
                try:
                    self.send_chunk(b'{"choices": [{"message": {"content": "')
                    while not owner._closed.wait(interval):
                        self.send_chunk(chunk)
                except OSError:  # the client hung up
                    owner.hung_up.set()
                self.close_connection = True

            def send_chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def log_message(self, *_args: Any) -> None:
                pass

        super().__init__(Handler)

    def close(self) -> None:
        self._closed.set()
        super().close()
