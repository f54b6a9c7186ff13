"""A small labeled set and one embedded classifier trained on it per session; the report endpoint under uvicorn."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from bot.reports_http import reports_endpoint
from knowledge.config import get_settings

from knowledge.demo.reports import demo_reports
from tools.reports.classifiers.embedded import EmbeddedClassifier
from tools.reports.redaction import redact


@pytest.fixture(scope="session")
def labeled_reports() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(train, test): 180 and 60 demo reports with their true categories."""
    reports = demo_reports(days=21, seed=3).reports[::4][:240]
    return reports[:180], reports[180:]


@pytest.fixture(scope="session")
def classifier(labeled_reports: tuple[list[dict[str, str]], list[dict[str, str]]]) -> EmbeddedClassifier:
    """The real MiniLM under a trained head (loaded once: the model takes seconds)."""
    train, _ = labeled_reports
    return EmbeddedClassifier.train([redact(r["text"]) for r in train], [r["category"] for r in train])


@pytest.fixture
def reports_server(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The endpoint under a real uvicorn on 127.0.0.1, on a free port."""
    monkeypatch.setenv("CULPRIT_REPORTS_TOKEN", "s3cret-reports-token")
    get_settings.cache_clear()
    app = Starlette(routes=[Route("/reports", reports_endpoint(get_settings()), methods=["POST"])])
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
