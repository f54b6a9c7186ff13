import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Route

from bot.reports_http import post_reports
from knowledge.config import get_settings
from knowledge.db import session_scope
from knowledge.reports import BugReport


@pytest.fixture
def reports_server(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The endpoint under a real uvicorn on 127.0.0.1, on a free port."""
    monkeypatch.setenv("CULPRIT_REPORTS_TOKEN", "s3cret")
    get_settings.cache_clear()
    app = Starlette(routes=[Route("/reports", post_reports, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/reports"
    server.should_exit = True
    thread.join(timeout=10)


def test_reports_are_committed_before_the_answer(reports_server: str, database_url: str) -> None:
    body = {"reports": [{"id": "h1", "text": "feed empty, write me at bo@example.com"}, {"id": "h2", "text": "crash on start", "created_at": "2025-06-01T10:00:00Z"}]}
    response = httpx.post(reports_server, json=body, headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 200
    assert response.json()["stored"] == 2
    with session_scope(database_url) as session:
        texts = {r.id: (r.text, r.source) for r in session.scalars(select(BugReport))}
    assert texts["h1"] == ("feed empty, write me at [email]", "http")

    again = httpx.post(reports_server, json=body["reports"], headers={"Authorization": "Bearer s3cret"})
    assert again.json()["duplicates"] == 2


def test_bad_requests_get_clear_errors(reports_server: str) -> None:
    auth = {"Authorization": "Bearer s3cret"}
    assert httpx.post(reports_server, json=[{"text": "x"}]).status_code == 401
    wrong = httpx.post(reports_server, json=[{"text": "x"}], headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "bearer token" in wrong.json()["error"]
    bad = httpx.post(reports_server, content=b"{not json", headers=auth)
    assert bad.status_code == 400 and "not JSON" in bad.json()["error"]
    missing = httpx.post(reports_server, json=[{"id": "1", "text": ""}], headers=auth)
    assert missing.status_code == 400 and missing.json()["error"] == "report 0: missing or empty 'text'"
    huge = httpx.post(reports_server, content=b"[" + b" " * (6 * 1024 * 1024) + b"]", headers=auth)
    assert huge.status_code == 413
