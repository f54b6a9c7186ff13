"""A Confluence REST API on loopback, enough for ``ConfluenceLoader``: a space's pages, paged, with basic auth;
bodies only when ``expand`` asks for them, and one page by id."""

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
        expected = "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()
        fake = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                fake.requests.append(self.path)
                if self.headers.get("Authorization") != expected:
                    self.send_json(401, {"message": "unauthorised"})
                    return
                url = urlsplit(self.path)
                query = {key: values[0] for key, values in parse_qs(url.query).items()}
                with_body = "body.storage" in query.get("expand", "")
                page_id = url.path.removeprefix("/rest/api/content/")
                if page_id in fake.pages:
                    self.send_json(200, fake.page(page_id, with_body))
                    return
                if url.path != "/rest/api/content" or query.get("spaceKey") != fake.space:
                    self.send_json(404, {"message": f"no route {url.path}"})
                    return
                start, limit = int(query.get("start", 0)), int(query.get("limit", 25))
                listed = [fake.page(page_id, with_body) for page_id in sorted(fake.pages)]
                if fake.answers_more_than_asked:
                    listed = [listed[n % len(listed)] for n in range(limit + 1)]
                listed = listed if fake.answers_more_than_asked else listed[start : start + limit]
                answer = {"results": listed, "start": start, "limit": limit, "size": len(listed), "_links": {}}
                if fake.trickle_seconds:
                    self.trickle(json.dumps(answer).encode())
                    return
                self.send_json(200, answer)

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
        self._server.close()
