"""A Confluence REST API on loopback, enough for ``ConfluenceLoader``: a space's pages, paged, with basic auth;
bodies only when ``expand`` asks for them, and one page by id. It can be made slow (a body a byte at a time,
headers without end) or failing, for the whole space or for the answers carrying one page's body."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.loopback import JsonHandler, LoopbackServer


class FakeConfluence:
    """``with FakeConfluence(user, token) as url:``; edit ``pages`` (id -> (title, html, version)) between syncs."""

    def __init__(self, username: str, token: str, space: str = "OPS") -> None:
        self.space = space
        self.pages: dict[str, tuple[str, str, int]] = {}
        self.requests: list[str] = []
        self.answers_more_than_asked = False  # every listing: limit + 1 pages, cycling, whatever start says
        self.without_links: set[str] = set()  # ids of pages answered without their "_links"
        self.trickle_seconds = 0.0  # when set, each listing's body is sent a byte at a time, this far apart
        self.hung_up = threading.Event()  # set when culprit closed the connection during a trickled answer
        self.slow_pages: set[str] = set()  # ids whose body stalls any answer carrying it: headers sent without end
        self.failing_pages: set[str] = set()  # ids whose body fails any answer carrying it with HTTP 500
        self.slow_headers = False  # when set, every answer's headers are sent without end
        self.retry_after: str | None = None  # when set, every answer is HTTP 429 with this Retry-After
        self.failing = False  # when set, every answer fails with HTTP 500
        self.failure_message = "internal server error"  # what an answer failing with HTTP 500 says
        self._closed = threading.Event()
        expected = "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()
        fake = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                fake.requests.append(self.path)
                if self.headers.get("Authorization") != expected:
                    self.send_json(401, {"message": "unauthorised"})
                    return
                if fake.retry_after is not None:
                    self.send_response(429)
                    self.send_header("Retry-After", fake.retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fake.failing:
                    self.send_json(500, {"message": fake.failure_message})
                    return
                url = urlsplit(self.path)
                query = {key: values[0] for key, values in parse_qs(url.query).items()}
                with_body = "body.storage" in query.get("expand", "")
                page_id = url.path.removeprefix("/rest/api/content/")
                if page_id in fake.pages:
                    if self.stalled_or_failed([page_id], with_body):
                        return
                    self.send_json(200, fake.page(page_id, with_body))
                    return
                if url.path != "/rest/api/content" or query.get("spaceKey") != fake.space:
                    self.send_json(404, {"message": f"no route {url.path}"})
                    return
                start, limit = int(query.get("start", 0)), int(query.get("limit", 25))
                ids = sorted(fake.pages)
                if fake.answers_more_than_asked:
                    ids = [ids[n % len(ids)] for n in range(limit + 1)]
                ids = ids if fake.answers_more_than_asked else ids[start : start + limit]
                if self.stalled_or_failed(ids, with_body):
                    return
                listed = [fake.page(page_id, with_body) for page_id in ids]
                answer = {"results": listed, "start": start, "limit": limit, "size": len(listed), "_links": {}}
                if fake.trickle_seconds:
                    self.trickle(json.dumps(answer).encode())
                    return
                self.send_json(200, answer)

            def stalled_or_failed(self, ids: list[str], with_body: bool) -> bool:
                """Whether the answer carrying these pages stalled or failed, as one of their bodies makes it."""
                if fake.slow_headers or (with_body and fake.slow_pages & set(ids)):
                    self.endless_headers()
                    return True
                if with_body and fake.failing_pages & set(ids):
                    self.send_json(500, {"message": fake.failure_message})
                    return True
                return False

            def endless_headers(self) -> None:
                """A status line, then header bytes a few ms apart for as long as culprit listens."""
                try:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: ")
                    while not fake._closed.wait(0.005):
                        self.wfile.write(b"a")
                        self.wfile.flush()
                except OSError:  # culprit hung up
                    fake.hung_up.set()

            def trickle(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for byte in range(len(body)):
                        self.wfile.write(body[byte : byte + 1])
                        self.wfile.flush()
                        time.sleep(fake.trickle_seconds)
                except OSError:  # culprit hung up
                    fake.hung_up.set()

        self._server = LoopbackServer(Handler)

    def page(self, page_id: str, with_body: bool = True) -> dict[str, Any]:
        title, html, version = self.pages[page_id]
        return {
            "id": page_id, "type": "page", "status": "current", "title": title,
            **({"body": {"storage": {"value": html, "representation": "storage"}}} if with_body else {}),
            "version": {"number": version, "when": f"2026-11-{version:02d}T10:00:00.000Z"},
            **({} if page_id in self.without_links else {"_links": {"webui": f"/spaces/{self.space}/pages/{page_id}"}}),
        }  # fmt: skip

    def __enter__(self) -> str:
        return self._server.url

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._server.close()
