"""`culprit doctor` on a working install, then with each part broken in turn: exactly that check fails, with its fix.

Every part is real: a SQLite store with a git repository ingested by the test,
a trained model file, the fake Slack Web API, an OpenAI-compatible server on
loopback; "down" is a closed port.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import structlog
import yaml
from apscheduler.triggers.cron import CronTrigger
from typer.testing import CliRunner

from bot.cli import app as culprit_cli
from bot.doctor import CheckResult, DoctorOptions, log_startup_checks, run_checks
from bot.doctor.slack import FEATURE_SCOPES
from bot.jobs import WEEKLY_DIGESTS, digest_key, last_digest_time
from knowledge.claims import claim, finish
from knowledge.config import Settings, get_settings
from knowledge.db import migrate, utcnow
from knowledge.errors import CulpritError
from knowledge.ingest.git_log import ingest_git
from tests.bot.fake_slack import MANIFEST_SCOPES, FakeSlack, FakeSlackServer
from tests.bot.silent_database import SilentDatabase
from tests.loopback import JsonHandler, LoopbackServer
from tests.rca.synthetic import make_history, write_jsonl_gz
from tests.tripwire import booby_trapped_pickle
from tools.rca.history.cases import load_history
from tools.rca.history.training import train_model
from tools.rca.judges.local import PICKLED_NAME, load_model, save_model
from tools.reports.digest import iso_week

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "xoxb-doctor-test"
CHANNELS = {"CALERTS": "alerts", "CDIGEST": "weekly", "CREPORTS": "user-feedback"}
SERVED = "culprit-judge"


def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FakeLLM(LoopbackServer):
    """An OpenAI-compatible server as vLLM answers: /v1/models, and chat completions that refuse
    more top logprobs than ``max_logprobs`` and tool choice when tools are off (HTTP 400)."""

    def __init__(self, served: str = SERVED, max_logprobs: int = 20, tools_enabled: bool = True) -> None:
        owner = self
        self.requests: list[dict[str, Any]] = []

        class Handler(JsonHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                self.send_json(200, {"object": "list", "data": [{"id": served, "object": "model"}]})

            def do_POST(self) -> None:  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(request)
                if (request.get("top_logprobs") or 0) > max_logprobs:
                    self.send_json(400, {"error": {"message": f"top_logprobs must be at most {max_logprobs}"}})
                elif request.get("tool_choice") == "auto" and not tools_enabled:
                    self.send_json(400, {"error": {"message": '"auto" tool choice requires --enable-auto-tool-choice'}})
                else:
                    self.send_json(200, {
                        "id": "chatcmpl-doctor", "object": "chat.completion", "created": 0, "model": served,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "OK"}, "finish_reason": "stop"}],
                    })

        super().__init__(Handler)
        self.base_url = f"{self.url}/v1"


def commit_to(repo: Path, days_ago: float) -> None:
    """A repository with one commit landed ``days_ago``."""
    stamp = f"{int((utcnow() - timedelta(days=days_ago)).timestamp())} +0000"
    env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp,
           "GIT_AUTHOR_NAME": "Ana", "GIT_AUTHOR_EMAIL": "ana@example.org",
           "GIT_COMMITTER_NAME": "Ana", "GIT_COMMITTER_EMAIL": "ana@example.org"}  # fmt: skip
    repo.mkdir(parents=True)
    (repo / "app.py").write_text("print('hello')\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "app: say hello"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local judge trained on a small synthetic history, saved once for the module."""
    folder = tmp_path_factory.mktemp("doctor-model")
    commits, cases = make_history(n_days=30, n_cases=16)
    history = load_history(
        [write_jsonl_gz(folder / "cases.jsonl.gz", cases)], [write_jsonl_gz(folder / "commits.jsonl.gz", commits)]
    )
    return save_model(train_model(history, history.cases, embeddings=None), folder / "ranker.model")


@pytest.fixture
def slack() -> Iterator[tuple[FakeSlack, str]]:
    server = FakeSlackServer(FakeSlack(channel_names=dict(CHANNELS), valid_token=TOKEN))
    with server as fake:
        yield fake, server.api_url


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM()
    yield server
    server.close()


@pytest.fixture
def working(
    data_dir: Path, model_file: Path, slack: tuple[FakeSlack, str], llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """Every part configured and working: store, fresh repository, model, Slack, LLM, a posted digest."""
    environment = {
        "SLACK_BOT_TOKEN": TOKEN,
        "CULPRIT_SLACK_API_URL": slack[1],
        "CULPRIT_ALERTS_CHANNEL": "CALERTS",
        "CULPRIT_DIGEST_CHANNEL": "CDIGEST",
        "CULPRIT_REPORTS_CHANNEL": "CREPORTS",
        "CULPRIT_LLM_BASE_URL": llm.base_url,
        "CULPRIT_LLM_MODEL": SERVED,
        "CULPRIT_LLM_TIMEOUT_S": "5",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    settings = get_settings()
    url = settings.resolved_database_url
    migrate(url)
    commit_to(data_dir.parent / "repos" / "shop", days_ago=0.1)
    ingest_git(data_dir.parent / "repos" / "shop", url, repo_name="acme/shop")
    settings.resolved_ranker_path.parent.mkdir(parents=True, exist_ok=True)
    settings.resolved_ranker_path.write_bytes(model_file.read_bytes())
    zone = ZoneInfo(settings.digest_timezone)
    due = last_digest_time(
        CronTrigger(day_of_week=settings.digest_day_of_week, hour=settings.digest_hour, timezone=zone),
        utcnow().astimezone(zone),
    )
    if due is not None:  # the scheduler posted the last due digest
        key = digest_key(iso_week(due.date() - timedelta(days=1)), "CDIGEST")
        assert claim(WEEKLY_DIGESTS, key, url)
        finish(WEEKLY_DIGESTS, key, url)
    return settings


def failing(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.name: result for result in results if result.status == "fail"}


def reconfigured(monkeypatch: pytest.MonkeyPatch, **environment: str) -> Settings:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return get_settings()


def test_a_working_install_passes_every_check(working: Settings, llm: FakeLLM) -> None:
    results = run_checks(working)

    assert failing(results) == {}
    statuses = {result.name: result.status for result in results}
    assert statuses["database"] == statuses["slack"] == statuses["llm"] == statuses["model"] == "pass"
    assert statuses["sources: acme/shop"] == statuses["scheduler"] == "pass"
    assert all(statuses[f"slack scopes: {feature}"] == "pass" for feature in FEATURE_SCOPES)
    assert all(statuses[f"slack channel: {purpose}"] == "pass" for purpose in ("alerts", "digest", "reports"))
    assert statuses["wiki"] == "skip"  # nothing configured or indexed: wiki search is off, not broken
    # The LLM was asked for a whole batch's logprobs and offered a tool.
    assert any(request.get("top_logprobs") == working.batch_size for request in llm.requests)
    assert any(request.get("tools") for request in llm.requests)


def test_database_down_fails_only_the_database(working: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = reconfigured(monkeypatch, CULPRIT_DATABASE_URL=f"postgresql+psycopg://culprit@127.0.0.1:{closed_port()}/culprit")
    results = run_checks(broken)

    assert list(failing(results)) == ["database"]
    assert "CULPRIT_DATABASE_URL" in failing(results)["database"].fix
    # What needs the database says so instead of failing on its own.
    assert {r.name: r.status for r in results}["sources"] == "skip"


def test_a_store_behind_its_migrations_is_told_to_upgrade(data_dir: Path) -> None:
    results = run_checks(Settings())

    assert failing(results)["database"].fix == "run `culprit db upgrade`"


def test_a_wrong_slack_token_fails_only_slack(working: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    results = run_checks(reconfigured(monkeypatch, SLACK_BOT_TOKEN="xoxb-revoked"))

    assert list(failing(results)) == ["slack"]
    assert "invalid_auth" in failing(results)["slack"].detail
    assert "SLACK_BOT_TOKEN" in failing(results)["slack"].fix


def test_a_missing_scope_names_the_feature_that_needs_it(working: Settings, slack: tuple[FakeSlack, str]) -> None:
    slack[0].scopes = tuple(scope for scope in MANIFEST_SCOPES if scope != "files:write")
    results = run_checks(working)

    assert list(failing(results)) == ["slack scopes: weekly digest"]
    assert "files:write" in failing(results)["slack scopes: weekly digest"].detail
    assert "reinstall" in failing(results)["slack scopes: weekly digest"].fix


def test_a_channel_the_bot_was_not_invited_to(working: Settings, slack: tuple[FakeSlack, str]) -> None:
    slack[0].not_in_channels.add("CDIGEST")
    results = run_checks(working)

    assert list(failing(results)) == ["slack channel: digest"]
    assert "/invite @culprit" in failing(results)["slack channel: digest"].fix


def test_chroma_down_fails_only_the_wiki(working: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    results = run_checks(reconfigured(monkeypatch, CULPRIT_CHROMA_URL=f"http://127.0.0.1:{closed_port()}"))

    assert list(failing(results)) == ["wiki"]
    assert "chroma run" in failing(results)["wiki"].fix


def test_a_chroma_that_accepts_and_never_answers_fails_the_wiki_instead_of_hanging(
    working: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knowledge.wiki import store

    monkeypatch.setattr(store, "CHROMA_HEARTBEAT_S", 0.5)  # the bound under test, cut short
    with SilentDatabase() as silent:  # a server behind a dead path: accepts, never answers
        port = urlsplit(silent.url).port
        results = run_checks(reconfigured(monkeypatch, CULPRIT_CHROMA_URL=f"http://127.0.0.1:{port}"))
        assert silent.connections >= 1

    assert list(failing(results)) == ["wiki"]
    assert failing(results)["wiki"].detail == f"Chroma at http://127.0.0.1:{port} did not answer its heartbeat within 0.5 s"
    assert "chroma run" in failing(results)["wiki"].fix


@pytest.mark.parametrize("opened", ["store only", "empty collection"])
def test_a_team_without_a_wiki_goes_green(working: Settings, opened: str) -> None:
    """A question (or serve) opens the embedded store, after which doctor failed for a team with no wiki."""
    from knowledge.wiki.store import configured_wiki, wiki_client

    wiki_client(working) if opened == "store only" else configured_wiki(working)
    result = CliRunner().invoke(culprit_cli, ["doctor", "--json"])

    assert result.exit_code == 0, result.output
    wiki = next(check for check in json.loads(result.stdout)["checks"] if check["name"] == "wiki")
    assert wiki["status"] == "pass"
    assert "no wiki indexed: answers cite no runbooks; `culprit ingest wiki DIR` adds one" in wiki["detail"]


def test_wiki_sources_that_left_the_wiki_empty_fail_the_wiki(
    working: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from knowledge.wiki.store import configured_wiki

    sources = json.dumps([{"kind": "notion", "name": "eng", "path": str(tmp_path / "notion")}])
    configured_wiki(working)
    results = run_checks(reconfigured(monkeypatch, CULPRIT_WIKI_SOURCES=sources))

    assert list(failing(results)) == ["wiki"]
    assert "CULPRIT_WIKI_SOURCES names eng" in failing(results)["wiki"].detail
    assert "culprit wiki sync" in failing(results)["wiki"].fix


def test_wiki_sources_with_no_embedded_store_yet_fail_the_wiki(
    working: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No sync ran yet, or every sync failed: the store was never made, which is not "wiki search is off"."""
    sources = json.dumps([{"kind": "notion", "name": "eng", "path": str(tmp_path / "notion")}])
    settings = reconfigured(monkeypatch, CULPRIT_WIKI_SOURCES=sources)
    assert not settings.chroma_url and not settings.chroma_dir.exists()

    results = run_checks(settings)

    assert list(failing(results)) == ["wiki"]
    assert "CULPRIT_WIKI_SOURCES names eng" in failing(results)["wiki"].detail
    assert "no embedded index exists yet" in failing(results)["wiki"].detail
    assert "culprit wiki sync" in failing(results)["wiki"].fix


def test_llm_down_fails_only_the_llm(working: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    results = run_checks(reconfigured(monkeypatch, CULPRIT_LLM_BASE_URL=f"http://127.0.0.1:{closed_port()}/v1"))

    assert list(failing(results)) == ["llm"]
    assert "start the vLLM server" in failing(results)["llm"].fix


@pytest.mark.parametrize(
    ("server", "fix"),
    [
        (dict(served="culprit-base"), "--served-model-name culprit-judge"),
        (dict(max_logprobs=5), "--max-logprobs 20"),
        (dict(tools_enabled=False), "--enable-auto-tool-choice"),
    ],
    ids=["other-name", "few-logprobs", "no-tools"],
)
def test_an_llm_server_started_wrong_says_which_flag(
    working: Settings, monkeypatch: pytest.MonkeyPatch, server: dict[str, Any], fix: str
) -> None:
    wrong = FakeLLM(**server)
    try:
        results = run_checks(reconfigured(monkeypatch, CULPRIT_LLM_BASE_URL=wrong.base_url))
    finally:
        wrong.close()

    assert list(failing(results)) == ["llm"]
    assert fix in failing(results)["llm"].fix


def test_the_model_line_names_only_the_promoted_version_culprit_model_knows(working: Settings, model_file: Path) -> None:
    """It read "promoted version 1: version 5, trained ...": version 5 was the file format, and
    `culprit model show 5` knows no such version."""
    from tools.rca.judges.local import load_model
    from tools.rca.retrain import registry

    url = working.resolved_database_url
    added = registry.add_version(load_model(model_file), working.data_dir, url, figures={}, status=registry.CHALLENGER)
    registry.promote(added.version, url, data_dir=working.data_dir)

    [model] = [result for result in run_checks(working) if result.name == "model"]

    assert model.status == "pass"
    assert re.fullmatch(rf"promoted version {added.version}: trained .+ ago on \d+ incidents of .+ \(.+\)", model.detail)


def test_a_missing_model_fails_only_the_model_and_says_what_answers_instead(
    working: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tools.rca.judges import starter

    working.resolved_ranker_path.unlink()
    results = run_checks(working)

    assert list(failing(results)) == ["model"]
    assert "culprit train" in failing(results)["model"].fix
    assert failing(results)["model"].detail == f"no trained model at {working.resolved_ranker_path}; the starter ranker answers instead"

    monkeypatch.setattr(starter, "STARTER_FILE", tmp_path / "trimmed-package" / "starter_ranker.model")
    detail = failing(run_checks(working))["model"].detail
    assert detail == f"no trained model at {working.resolved_ranker_path}; RCA ranks with the heuristic blend only"


def test_a_promoted_version_cut_short_is_named_with_what_answers_and_how_to_serve_a_good_one(
    working: Settings, model_file: Path
) -> None:
    """It read "... is not a culprit model file (an old joblib or pickle file?); retrain with `culprit train`":
    the file was a culprit model cut short, and `culprit train` writes a file that does not serve."""
    from tools.rca.judges.local import load_model
    from tools.rca.retrain import registry

    url = working.resolved_database_url
    added = registry.add_version(load_model(model_file), working.data_dir, url, figures={}, status=registry.CHALLENGER)
    registry.promote(added.version, url, data_dir=working.data_dir)
    path = Path(added.path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a copy or a full disk stopped half-way

    model = failing(run_checks(working))["model"]

    assert model.detail.startswith(f"the promoted model version {added.version} at {path} could not be loaded "
                                   f"(the model file {path} is damaged or cut short (")
    assert model.detail.endswith("); the starter ranker answers instead")
    assert "joblib" not in model.detail and "culprit train" not in model.detail
    assert "`culprit model rollback`" in model.fix and "`culprit model retrain`" in model.fix


def test_a_model_whose_trees_were_cut_short_after_writing_fails_with_the_reason_the_bot_would_give(
    working: Settings,
) -> None:
    """The header still reads (kind, format, version, manifest) but the ranker's trees end half-way, as a
    copy cut short or a disk error leaves them: doctor loads it as an answer would, and fails as it would."""
    path = working.resolved_ranker_path
    with zipfile.ZipFile(path) as written:
        members = {name: written.read(name) for name in written.namelist()}
    members["ranker.txt"] = members["ranker.txt"][: len(members["ranker.txt"]) // 2]
    with zipfile.ZipFile(path, "w") as damaged:
        for name, content in members.items():
            damaged.writestr(name, content)
    with pytest.raises(CulpritError) as loading:
        load_model(path)

    results = run_checks(working)

    assert list(failing(results)) == ["model"]
    assert failing(results)["model"].detail == str(loading.value)
    assert "damaged LightGBM trees" in failing(results)["model"].detail
    assert "culprit train" in failing(results)["model"].fix


def test_an_old_pickled_model_is_named_not_reported_missing(working: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "ranker-was-unpickled"
    working.resolved_ranker_path.unlink()
    old = working.resolved_ranker_path.with_name(PICKLED_NAME)
    old.write_bytes(booby_trapped_pickle(marker))
    results = run_checks(working)

    assert list(failing(results)) == ["model"]
    assert f"the model file {old} is in an old format (pickle), not loaded" in failing(results)["model"].detail
    assert "culprit train" in failing(results)["model"].fix
    assert not marker.exists()


def test_a_stale_repository_fails_only_its_source(working: Settings, data_dir: Path) -> None:
    commit_to(data_dir.parent / "repos" / "billing", days_ago=30)
    ingest_git(data_dir.parent / "repos" / "billing", working.resolved_database_url, repo_name="acme/billing")
    results = run_checks(working, DoctorOptions(stale_after_days=7))

    assert list(failing(results)) == ["sources: acme/billing"]
    assert "culprit ingest git" in failing(results)["sources: acme/billing"].fix
    assert not failing(run_checks(working, DoctorOptions(stale_after_days=60)))


def test_an_unposted_digest_fails_the_scheduler(working: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another channel: no digest was ever posted there.
    results = run_checks(reconfigured(monkeypatch, CULPRIT_DIGEST_CHANNEL="CALERTS"))

    assert list(failing(results)) == ["scheduler"]
    assert "without --no-scheduler" in failing(results)["scheduler"].fix


def test_nothing_configured_is_skipped_not_failed(data_dir: Path) -> None:
    migrate(Settings().resolved_database_url)
    statuses = {result.name: result.status for result in run_checks(Settings())}

    assert statuses["slack"] == statuses["llm"] == statuses["wiki"] == statuses["scheduler"] == "skip"


def test_the_command_prints_json_and_exits_1_on_a_failure(working: Settings) -> None:
    runner = CliRunner()
    healthy = runner.invoke(culprit_cli, ["doctor", "--json"])
    assert healthy.exit_code == 0, healthy.output
    assert json.loads(healthy.stdout)["ok"] is True

    working.resolved_ranker_path.unlink()
    broken = runner.invoke(culprit_cli, ["doctor"])
    assert broken.exit_code == 1
    assert re.search(r"FAIL model .*\n\s+fix: run `culprit train", broken.stdout)


def test_the_manifest_asks_for_exactly_the_scopes_features_need() -> None:
    manifest = yaml.safe_load((REPO_ROOT / "manifest.yml").read_text())
    needed = {scope for scopes in FEATURE_SCOPES.values() for scope in scopes}

    assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed == set(MANIFEST_SCOPES)
    # History scopes come with the events that deliver the messages they read.
    assert {"message.channels", "message.groups", "app_mention"} <= set(manifest["settings"]["event_subscriptions"]["bot_events"])
    docs = (REPO_ROOT / "docs/slack.md").read_text()
    for feature, scopes in FEATURE_SCOPES.items():
        row = next((line for line in docs.splitlines() if line.startswith(f"| {feature} |")), None)
        assert row is not None, f"docs/slack.md has no scope row for {feature}"
        assert all(f"`{scope}`" in row for scope in scopes), row


def test_serve_logs_the_quick_checks_with_their_fixes(working: Settings, llm: FakeLLM) -> None:
    working.resolved_ranker_path.unlink()
    with structlog.testing.capture_logs() as logged:
        log_startup_checks(working)

    lines = {line["check"]: line for line in logged if line["event"] == "startup check"}
    assert lines["model"]["log_level"] == "warning" and "culprit train" in lines["model"]["fix"]
    assert lines["database"]["status"] == lines["slack"]["status"] == "pass"
    assert "llm" not in lines and "wiki" not in lines  # the slow checks are left to `culprit doctor`
    assert llm.requests == []


def test_passwords_in_server_urls_never_reach_the_report(working: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy's credentials in a URL: the down servers are named, the password is not, on screen or in JSON."""
    reconfigured(
        monkeypatch,
        CULPRIT_SLACK_API_URL=f"http://ops:hunter2@127.0.0.1:{closed_port()}/api/",
        CULPRIT_LLM_BASE_URL=f"http://ops:hunter2@127.0.0.1:{closed_port()}/v1",
        CULPRIT_CHROMA_URL=f"http://ops:hunter2@127.0.0.1:{closed_port()}",
    )
    runner = CliRunner()
    shown = runner.invoke(culprit_cli, ["doctor"])
    as_json = runner.invoke(culprit_cli, ["doctor", "--json"])

    assert shown.exit_code == as_json.exit_code == 1
    failed_checks = failing([CheckResult(**check) for check in json.loads(as_json.stdout)["checks"]])
    assert {"slack", "wiki", "llm"} <= set(failed_checks)
    assert all("ops:***@127.0.0.1" in failed_checks[name].detail for name in ("slack", "wiki", "llm"))
    assert "hunter2" not in shown.output + as_json.output


def test_a_password_an_http_client_quotes_without_its_url_never_reaches_the_report_or_the_log(
    working: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Slack API URL with a password and no port: urllib takes ``hunter2@127.0.0.1`` for the port and says
    ``nonnumeric port: 'hunter2@127.0.0.1'``, which no URL mask finds; `culprit serve` logs the line at start."""
    settings = reconfigured(monkeypatch, CULPRIT_SLACK_API_URL="http://ops:hunter2@127.0.0.1/api/")
    with structlog.testing.capture_logs() as logged:
        results = log_startup_checks(settings)

    assert failing(results)["slack"].detail == (
        "cannot reach Slack at http://ops:***@127.0.0.1/api/ (InvalidURL: nonnumeric port: '***@127.0.0.1')"
    )
    assert "hunter2" not in str(logged)


class _ChromaBehindAProxy(JsonHandler):
    """Answers Chroma's heartbeat, then every request with the proxy's error, which names its upstream with
    that upstream's credentials."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.endswith("/heartbeat"):
            self.send_json(200, {"nanosecond heartbeat": 1})
        else:
            self.send_json(502, {"error": "upstream http://chroma:s3cret@chroma-backend:8000 refused the connection"})

    do_POST = do_GET


def test_a_chroma_error_quoting_a_url_password_is_reported_masked(
    working: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = LoopbackServer(_ChromaBehindAProxy)
    try:
        results = run_checks(reconfigured(monkeypatch, CULPRIT_CHROMA_URL=proxy.url))
    finally:
        proxy.close()

    detail = failing(results)["wiki"].detail
    assert "s3cret" not in detail and "http://***@chroma-backend:8000" in detail


@pytest.mark.parametrize("days", ["inf", "1e308"])
def test_a_stale_threshold_past_ten_years_is_a_usage_error(working: Settings, days: str) -> None:
    """inf or 1e308 days made the sources check fail with 'the check itself failed: OverflowError'."""
    result = CliRunner().invoke(culprit_cli, ["doctor", "--stale-days", days])
    assert result.exit_code == 2 and "Invalid value for '--stale-days'" in result.output, result.output


@pytest.mark.parametrize("padding", [0, 250], ids=["short", "password-cut-at-300"])
def test_a_check_that_raises_is_reported_without_the_password_in_its_error(
    working: Settings, monkeypatch: pytest.MonkeyPatch, padding: int
) -> None:
    from bot.doctor import store

    def unreadable_model(settings: Settings, options: DoctorOptions) -> list[CheckResult]:
        raise OSError("x" * padding + "could not read postgresql+psycopg://ops:hunter2hunter2@db.internal/culprit")

    monkeypatch.setattr(store, "check_model", unreadable_model)
    results = run_checks(working)

    detail = failing(results)["model"].detail
    assert detail.startswith("the check itself failed: OSError: ")
    assert "hunter2" not in detail and "ops:hunter" not in detail
    assert padding or detail.endswith("could not read postgresql+psycopg://***@db.internal/culprit")
