"""A replica stopped for a rolling restart answers the /rca it already acked before it exits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import uvicorn

from bot.app import create_app
from bot.server import create_server
from knowledge.config import get_settings
from knowledge.db import migrate
from tests.bot.fake_slack import FakeSlack, FakeSlackServer
from tests.bot.slack_requests import SIGNING_SECRET, SlackSender
from tools.rca.answers import IncidentQuery, RcaAnswer

INVESTIGATION_S = 2.0


def slow_investigation(query: IncidentQuery) -> RcaAnswer:
    time.sleep(INVESTIGATION_S)
    return RcaAnswer(incident=query, confident=False, confidence=0.1, suggestions=[], strongest_signals=["nothing stood out"])


def test_stopping_a_replica_waits_for_the_answers_it_acked(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database_url = f"sqlite:///{data_dir / 'culprit.db'}"
    migrate(database_url)
    with FakeSlackServer(FakeSlack(channel_names={"CINC1": "inc-checkout"})) as slack:
        for name, value in {
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "CULPRIT_SLACK_API_URL": slack.base_url + "api/",
            "CULPRIT_DATABASE_URL": database_url,
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        settings = get_settings()
        app = create_server(create_app(settings, investigate=slow_investigation), settings)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
        serving = threading.Thread(target=server.run, daemon=True)
        serving.start()
        while not server.started:
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        sender = SlackSender(f"http://127.0.0.1:{port}", response_url=slack.base_url + "response/rca")
        acked = sender.command("checkout fails with 502 service:checkout")
        sender.close()
        assert acked.status_code == 200

        server.should_exit = True  # what uvicorn does on SIGTERM
        serving.join(timeout=30)
        stopped_at = time.time()
        answers = [call for call in slack.calls_to("chat.postMessage") if "nothing stood out" in str(call.args)]
    assert not serving.is_alive()
    assert len(answers) == 1 and answers[0].at <= stopped_at
