"""POST /reports while the database is down: a clear 503 the sender can retry, never a bare 500."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from bot.reports_http import reports_endpoint
from knowledge.config import get_settings
from tests.bot.live import LiveServer
from tests.vllm_server import free_port


def test_a_batch_sent_while_the_database_is_down_gets_a_retryable_503(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed_port = free_port()
    monkeypatch.setenv("CULPRIT_DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:{closed_port}/culprit")
    monkeypatch.setenv("CULPRIT_REPORTS_TOKEN", "reports-t0ken-4c1f")
    get_settings.cache_clear()
    with LiveServer(Starlette(routes=[Route("/reports", reports_endpoint(get_settings()), methods=["POST"])])) as url:
        response = httpx.post(
            f"{url}/reports",
            json=[{"id": "r1", "text": "checkout button does nothing"}],
            headers={"Authorization": "Bearer reports-t0ken-4c1f"},
            timeout=30,
        )
    assert response.status_code == 503 and response.headers["retry-after"] == "30"
    assert "send the same batch again" in response.json()["error"]
