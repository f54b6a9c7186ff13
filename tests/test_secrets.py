"""No secret set in the environment is ever printed or logged, in a whole run of `culprit`.

The run uses every secret where it counts: a password in the PostgreSQL URL
(the local server trusts any password), Slack's bot token and signing secret
against the fake Web API, the bearer tokens of the report intake and of
``/metrics``, and an LLM key sent to an LLM server that fails, so the judge
falls back and logs why.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from knowledge.config import Settings
from tests.bot.fake_slack import FakeSlack, FakeSlackServer
from tests.bot.slack_requests import SlackSender
from tests.llm.servers import MisbehavingLLM, json_reply
from tests.rca.synthetic import make_history, write_jsonl_gz
from tools.llm.client import LLMEndpoint, openai_client
from tools.rca.history.cases import load_history

CULPRIT = str(Path(sys.executable).with_name("culprit"))
PASSWORD = "pw-7c01-in-the-url"
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-0000-bot-token-5e9d",
    "SLACK_SIGNING_SECRET": "signing-secret-31b7",
    "SLACK_APP_TOKEN": "xapp-1-app-token-a4c2",
    "CULPRIT_REPORTS_TOKEN": "reports-token-88f0",
    "CULPRIT_METRICS_TOKEN": "metrics-token-0b5a",
    "CULPRIT_LLM_API_KEY": "sk-llm-key-d61e",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Run:
    """Runs `culprit` commands in one environment and keeps everything they wrote."""

    def __init__(self, environment: dict[str, str]) -> None:
        self.environment = environment
        self.output: list[str] = []

    def __call__(self, *arguments: str) -> str:
        done = subprocess.run([CULPRIT, *arguments], env=self.environment, capture_output=True, text=True, timeout=600, check=False)
        self.output += [done.stdout, done.stderr]
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


def test_a_full_run_never_shows_a_secret(postgres_url: str, tmp_path: Path) -> None:
    database_url = make_url(postgres_url).set(password=PASSWORD).render_as_string(hide_password=False)
    llm = MisbehavingLLM(json_reply({"error": {"message": "engine dead"}}, status=500))
    run = Run({
        **os.environ, **SECRETS,
        "CULPRIT_DATA_DIR": str(tmp_path / "data"),
        "CULPRIT_DATABASE_URL": database_url,
        "CULPRIT_LLM_BASE_URL": llm.base_url,
        "CULPRIT_LLM_MODEL": "sick-llm",
    })
    try:
        upgraded = run("db", "upgrade")
        assert upgraded.split() == ["schema", "is", "up", "to", "date", "at", database_url.replace(PASSWORD, "***")]

        commits, cases = make_history()
        cases_file = write_jsonl_gz(tmp_path / "cases-acme.jsonl.gz", cases)
        commits_file = write_jsonl_gz(tmp_path / "commits-acme.jsonl.gz", commits)
        run("ingest", "history", "--commits", str(commits_file), "--cases", str(cases_file))
        run("train", "--cases", str(cases_file), "--commits", str(commits_file), "--no-embeddings")
        case = load_history([cases_file], [commits_file]).cases[-1]
        at = (case.incident.started_at + timedelta(minutes=1)).isoformat()
        assert '"suggestions"' in run("rca", case.incident.text, "--at", at, "--repo", "acme/widget", "--json")

        slash_command = f"{case.incident.text} at:{at}"
        run.output += _serve_one_incident_and_one_batch_of_reports(run.environment, slash_command)
        assert llm.requests, "the bot's judge asked the LLM (and fell back when it failed)"
    finally:
        llm.close()

    everything = "\n".join(run.output)
    assert "llm_judge_fallback" in everything and "POST /reports" in everything  # the logs are in there
    for secret in [PASSWORD, *SECRETS.values()]:
        assert secret not in everything


def _serve_one_incident_and_one_batch_of_reports(environment: dict[str, str], slash_command: str) -> list[str]:
    """`culprit serve` answers a signed /rca, stores a report and shows its metrics, then stops on SIGTERM; its output."""
    port = _free_port()
    with FakeSlackServer(FakeSlack(channel_names={"CINC1": "inc-checkout"})) as slack:
        serving = subprocess.Popen(
            [CULPRIT, "serve", "--port", str(port)],
            env={**environment, "CULPRIT_SLACK_API_URL": slack.base_url + "api/"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_until_healthy(base_url, serving)
            sender = SlackSender(base_url, secret=SECRETS["SLACK_SIGNING_SECRET"], response_url=slack.base_url + "response/rca")
            assert sender.command(slash_command).status_code == 200
            sender.close()
            slack.wait_for(lambda call: bool(call.args.get("blocks")), timeout=300)
            stored = httpx.post(
                f"{base_url}/reports",
                json=[{"id": "r1", "text": "the app logs me out every hour"}],
                headers={"Authorization": f"Bearer {SECRETS['CULPRIT_REPORTS_TOKEN']}"},
                timeout=60,
            )
            assert stored.status_code == 200, stored.text
            metrics_bearer = {"Authorization": f"Bearer {SECRETS['CULPRIT_METRICS_TOKEN']}"}
            assert httpx.get(f"{base_url}/metrics", headers=metrics_bearer, timeout=60).status_code == 200
        finally:
            serving.send_signal(signal.SIGTERM)
            stdout, stderr = serving.communicate(timeout=120)
    return [stdout, stderr]


def _wait_until_healthy(base_url: str, serving: subprocess.Popen[str]) -> None:
    """Polls /healthz until the server answers 200; fails with the server's output if it exits first."""
    while serving.poll() is None:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:  # not listening yet
            pass
        try:
            serving.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
    raise AssertionError(f"culprit serve exited with {serving.returncode}: {serving.communicate()}")


def test_secrets_print_masked_and_reach_their_clients_whole() -> None:
    settings = Settings(
        llm_base_url="http://127.0.0.1:9/v1", llm_model="m", llm_api_key=SECRETS["CULPRIT_LLM_API_KEY"],
        slack_bot_token=SECRETS["SLACK_BOT_TOKEN"], reports_token=SECRETS["CULPRIT_REPORTS_TOKEN"],
    )
    shown = f"{settings!r} {settings} {LLMEndpoint.from_settings(settings)!r}"
    assert not any(secret in shown for secret in SECRETS.values()) and "**********" in shown
    assert openai_client(LLMEndpoint.from_settings(settings)).api_key == SECRETS["CULPRIT_LLM_API_KEY"]
