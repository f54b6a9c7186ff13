"""Deploys, flag flips and config pushes arrive by POST /changes or `culprit ingest changes`: each event is
checked on its own, stored once by id, and becomes a candidate whose evidence names what a deploy carried."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.sources_http import MAX_CHANGES_BYTES
from knowledge.changes import Change
from knowledge.config import TrackedRepo
from knowledge.db import session_scope, utcnow
from knowledge.services import Service
from knowledge.sources.polling import poll_repository
from tests.bot.conftest import StartBot
from tests.sources.upstream import CHANGES_TOKEN, Upstream
from tools.rca.answers import IncidentQuery
from tools.rca.resources import RcaResources
from graph.rca_graph import run_rca

BEARER = {"Authorization": f"Bearer {CHANGES_TOKEN}"}


def _deploy(upstream: Upstream, **fields: Any) -> dict[str, Any]:
    return {
        "id": "deploy-481", "kind": "deploy", "service": "payments", "environment": "production", "version": "2.4.0",
        "repo": upstream.name, "commit_range": f"{upstream.shas[0]}..{upstream.shas[-1]}", "author": "ci",
        "time": utcnow().isoformat(), "link": "https://ci.example/deploys/481",
    } | fields  # fmt: skip


def test_posted_events_are_stored_once_each_bad_one_refused_with_its_reason(
    database_url: str, start_bot: StartBot, tmp_path: Path
) -> None:
    upstream = Upstream.create(tmp_path / "shop")
    for n in range(4):  # within a second or two: only git can tell which a range holds
        upstream.commit(f"services/payments/m{n}.py", f"payments change {n}", lines=n + 1)
    bot = start_bot(database_url, env={"CULPRIT_CHANGES_TOKEN": CHANGES_TOKEN,
                                       "CULPRIT_REPOS": json.dumps([upstream.tracked()])})  # fmt: skip
    poll_repository(TrackedRepo(**upstream.tracked()), bot.settings.mirrors_dir, database_url, 60)
    flag = {"id": "flag-9", "kind": "flag", "service": "checkout", "title": "new_checkout_flow on for 50%",
            "time": utcnow().isoformat()}  # fmt: skip
    batch = [
        _deploy(upstream),
        flag,
        {"id": "x", "kind": "rollout", "service": "s", "time": utcnow().isoformat()},
        {"id": "y", "kind": "config", "service": "s", "time": "yesterday"},
        {"id": "z" * 80, "kind": "infra", "service": "s", "time": utcnow().isoformat()},
        {"id": "w", "kind": "flag", "service": "s", "time": (utcnow() + timedelta(days=2)).isoformat()},
        "not an object",
    ]

    answer = httpx.post(f"{bot.url}/changes", json=batch, headers=BEARER, timeout=60)
    again = httpx.post(f"{bot.url}/changes", json={"changes": batch[:2]}, headers=BEARER, timeout=60)
    unauthorised = httpx.post(f"{bot.url}/changes", json=batch[:2], timeout=60)
    all_bad = httpx.post(f"{bot.url}/changes", json=batch[2:4], headers=BEARER, timeout=60)
    huge = httpx.post(f"{bot.url}/changes", content=b"[" + b" " * MAX_CHANGES_BYTES + b"]", headers=BEARER, timeout=60)
    not_json = httpx.post(f"{bot.url}/changes", content=b'[{"id": "a",', headers=BEARER, timeout=60)

    assert answer.status_code == 207
    assert {key: answer.json()[key] for key in ("received", "stored", "already_present")} == {
        "received": 7, "stored": 2, "already_present": 0}  # fmt: skip
    reasons = {item["index"]: item["reason"] for item in answer.json()["rejected"]}
    assert sorted(reasons) == [2, 3, 4, 5, 6]
    assert "'kind' must be one of" in reasons[2] and "bad 'time'" in reasons[3] and "'id'" in reasons[4]
    assert "future" in reasons[5] and "expected an object" in reasons[6]
    assert again.json() == {"received": 2, "stored": 0, "already_present": 2}
    assert (unauthorised.status_code, all_bad.status_code) == (401, 400)
    assert (huge.status_code, not_json.status_code) == (413, 400)
    with session_scope(database_url) as session:
        deploy = session.get(Change, "deploy-481")
        assert deploy is not None
        assert (deploy.kind, deploy.services, deploy.environment, deploy.version) == (
            "deploy", ["payments"], "production", "2.4.0")  # fmt: skip
        assert deploy.carries == upstream.shas[1:]  # the range excludes its start, as git's FROM..TO does
        assert sorted(file.path for file in deploy.files) == [f"services/payments/m{n}.py" for n in (1, 2, 3)]
        assert session.get(Change, "flag-9").title == "new_checkout_flow on for 50%"


def test_a_deploy_is_a_candidate_whose_evidence_names_the_commits_it_carried(
    database_url: str, tmp_path: Path
) -> None:
    upstream = Upstream.create(tmp_path / "shop")
    started = utcnow()
    for n in range(3):
        upstream.commit(f"services/payments/m{n}.py", f"payments change {n}", when=int(started.timestamp()) - 7200 + n)
    poll_repository(TrackedRepo(**upstream.tracked()), tmp_path / "mirrors", database_url, 60)
    events = tmp_path / "events.jsonl"
    deploy = _deploy(upstream, commit_range="", commits=[sha[:12] for sha in upstream.shas],
                     time=(started - timedelta(minutes=10)).isoformat())  # fmt: skip
    events.write_text(json.dumps(deploy) + "\n{broken\n")
    loaded = subprocess.run(
        [str(Path(sys.executable).with_name("culprit")), "ingest", "changes", str(events), "--json"],
        capture_output=True, text=True, check=True,
    )
    assert json.loads(loaded.stdout)["stored"] == 1
    assert json.loads(loaded.stdout)["rejected"][0]["index"] == 1
    with session_scope(database_url) as session:
        session.add(Service(name="payments", owner="team-payments", path_globs=["services/payments/**"], depends_on=[]))

    query = IncidentQuery(text="card payments fail after the payments deploy", started_at=started, service="payments")
    answer = run_rca(query, database_url=database_url, resources=RcaResources(min_confidence=0.0), persist=False)

    suggested = {suggestion.change_id: suggestion for suggestion in answer.suggestions}
    assert answer.n_candidates == 4 and "deploy-481" in suggested
    evidence = suggested["deploy-481"].evidence
    assert evidence.carried == upstream.shas and "deploy" in evidence.risk
    assert evidence.sentences[0].startswith("A deploy of payments 2.4.0 to production, carrying 3 commits")


def test_a_changes_file_line_that_is_not_json_is_refused_alone_saying_why_not_a_traceback(
    database_url: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    flag = {"id": "flag-9", "kind": "flag", "service": "checkout", "time": utcnow().isoformat()}
    secret = "xoxb-not-for-the-answer"
    lines = tmp_path / "events.jsonl"
    lines.write_bytes(b"\n".join([
        json.dumps(flag).encode(),
        b"[" * 100_000 + b"]" * 100_000,
        b"",
        f'{{"id": "flag-10", "token": "{secret}"'.encode(),
        b'{"id": "flag-\xff", "kind": "flag"}',
        b'"a string"',
    ]) + b"\n")  # fmt: skip
    whole = tmp_path / "events.json"
    whole.write_text("[" * 100_000 + "]" * 100_000)

    per_line = CliRunner().invoke(app, ["ingest", "changes", str(lines), "--json"])
    at_once = CliRunner().invoke(app, ["ingest", "changes", str(whole), "--json"])

    answer = json.loads(per_line.stdout)
    assert answer["stored"] == 1
    assert [(item["index"], item["reason"]) for item in answer["rejected"]] == [
        (1, "line 2: JSON nested too deeply"),
        (2, "line 4: invalid JSON (Expecting ',' delimiter)"),
        (3, "line 5: not UTF-8 text"),
        (4, "expected an object with id, kind, service, title and time"),
    ]
    assert secret not in per_line.stdout
    assert (per_line.exit_code, at_once.exit_code) == (0, 1)  # some stored; none, every event refused
    assert json.loads(at_once.stdout)["rejected"] == [{"index": 0, "id": None, "reason": "line 1: JSON nested too deeply"}]


def test_a_changes_file_of_one_json_line_is_that_one_event(database_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    one = tmp_path / "events.jsonl"
    one.write_text(json.dumps({"id": "flag-9", "kind": "flag", "service": "checkout", "time": utcnow().isoformat()}) + "\n")
    not_events = tmp_path / "other.json"
    not_events.write_text(json.dumps({"changes": "none"}))

    loaded = CliRunner().invoke(app, ["ingest", "changes", str(one), "--json"])
    refused = CliRunner().invoke(app, ["ingest", "changes", str(not_events)])

    assert json.loads(loaded.stdout) == {"received": 1, "stored": 1, "already_present": 0, "rejected": [],
                                         "unknown_commits": []}  # fmt: skip
    assert refused.exit_code == 1 and "expected a JSON list of change events" in str(refused.exception)


def test_a_changes_file_whose_every_event_is_refused_fails_and_a_partly_refused_one_counts_them(
    database_url: str, tmp_path: Path
) -> None:
    """A script or cron that loads a file of nothing but bad events must see it fail, not a quiet 0 new."""
    from typer.testing import CliRunner

    from bot.cli import app

    flag = {"id": "flag-9", "kind": "flag", "service": "checkout", "time": utcnow().isoformat()}
    bad = [{"id": "x", "kind": "rollout", "service": "s", "time": utcnow().isoformat()}, "not an object"]
    all_bad = tmp_path / "bad.json"
    all_bad.write_text(json.dumps(bad))
    some_bad = tmp_path / "some.json"
    some_bad.write_text(json.dumps([flag, *bad]))

    refused = CliRunner().invoke(app, ["ingest", "changes", str(all_bad)])
    refused_json = CliRunner().invoke(app, ["ingest", "changes", str(all_bad), "--json"])
    partly = CliRunner().invoke(app, ["ingest", "changes", str(some_bad)])
    again = CliRunner().invoke(app, ["ingest", "changes", str(some_bad)])

    assert refused.exit_code == 1
    assert str(refused.exception) == f"nothing stored from {all_bad}: all 2 change events were refused (reasons above)"
    assert "0 new" in refused.stdout and refused.stdout.count("refused event") == 2
    assert refused_json.exit_code == 1 and len(json.loads(refused_json.stdout)["rejected"]) == 2
    assert partly.exit_code == 0 and "1 new, 0 already present, 2 refused" in partly.stdout
    assert again.exit_code == 0 and "0 new, 1 already present, 2 refused" in again.stdout


def test_events_without_an_author_read_without_a_dangling_comma(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deploy or flag event with no author showed in `culprit rca` as "(, landed 1 h 30 min before" and in
    the agent's answers as "by , landed" and "— , 2024-...": the empty author left its comma behind."""
    from functools import partial

    from typer.testing import CliRunner

    from bot.cli import app
    from graph.agent_tools import AgentContext, build_tools
    from knowledge.config import get_settings
    from knowledge.wiki.store import configured_wiki
    from tools.rca.resources import load_resources

    started = utcnow().replace(microsecond=0)
    landed = (started - timedelta(minutes=90)).isoformat()
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps({"id": f"{kind}-1", "kind": kind, "service": "payments", "title": f"a {kind}",
                                          "time": landed}) + "\n" for kind in ("deploy", "flag")))  # fmt: skip
    assert CliRunner().invoke(app, ["ingest", "changes", str(events)]).exit_code == 0
    monkeypatch.setenv("CULPRIT_MIN_CONFIDENCE", "0")
    get_settings.cache_clear()

    shown = CliRunner().invoke(app, ["rca", "payments fail", "--at", started.isoformat()])

    assert shown.exit_code == 0, shown.output
    assert shown.stdout.count("(landed 1 h 30 min before, judge ") == 2, shown.stdout
    assert "(," not in shown.stdout
    settings = get_settings()
    resources = load_resources(settings)
    context = AgentContext(
        started_at=started, database_url=database_url, wiki=partial(configured_wiki, settings),
        investigate=lambda query: run_rca(query, database_url=database_url, resources=resources),
    )  # fmt: skip
    tools = {tool.name: tool for tool in build_tools(context)}
    answer, _ = tools["investigate_incident"].func("payments fail", "payments")
    listed, _ = tools["changes_in_service"].func("payments", 48)
    assert answer.count("by unknown, landed 90 min before") == 2, answer
    assert listed.count("— unknown, ") == 2, listed


def test_a_deploy_whose_range_culprit_has_not_seen_yet_is_refused_and_stored_whole_when_sent_again(
    database_url: str, start_bot: StartBot, tmp_path: Path
) -> None:
    """A deploy sent before the poll brought its commits was stored carrying nothing, and answered 200; sent
    again once they were polled, it was "already present": its commits and files were lost for good."""
    upstream = Upstream.create(tmp_path / "shop")
    for n in range(3):
        upstream.commit(f"services/payments/m{n}.py", f"payments change {n}")
    bot = start_bot(database_url, env={"CULPRIT_CHANGES_TOKEN": CHANGES_TOKEN,
                                       "CULPRIT_REPOS": json.dumps([upstream.tracked()])})  # fmt: skip
    flag = {"id": "flag-3", "kind": "flag", "service": "checkout", "time": utcnow().isoformat()}

    early = httpx.post(f"{bot.url}/changes", json=[_deploy(upstream), flag], headers=BEARER, timeout=60)

    assert early.status_code == 207 and early.json()["stored"] == 1
    [refused] = early.json()["rejected"]
    assert (refused["index"], refused["id"]) == (0, "deploy-481")
    assert refused["reason"].startswith(f"'commit_range' is not known in {upstream.name} yet")
    poll_repository(TrackedRepo(**upstream.tracked()), bot.settings.mirrors_dir, database_url, 60)
    again = httpx.post(f"{bot.url}/changes", json=[_deploy(upstream)], headers=BEARER, timeout=60)
    assert again.json() == {"received": 1, "stored": 1, "already_present": 0}
    with session_scope(database_url) as session:
        assert session.get(Change, "deploy-481").carries == upstream.shas[1:]


def test_a_deploys_listed_commits_culprit_has_not_stored_are_named_in_the_answer_not_dropped_unseen(
    database_url: str, start_bot: StartBot, tmp_path: Path
) -> None:
    """A listed sha culprit had not stored (not polled yet, or of a repository it does not track) was dropped:
    answered 200 as if the deploy carried it, the sender never learnt its files were missing."""
    from typer.testing import CliRunner

    from bot.cli import app

    upstream = Upstream.create(tmp_path / "shop")
    known = upstream.commit("services/payments/m.py", "payments change")
    bot = start_bot(database_url, env={"CULPRIT_CHANGES_TOKEN": CHANGES_TOKEN,
                                       "CULPRIT_REPOS": json.dumps([upstream.tracked()])})  # fmt: skip
    poll_repository(TrackedRepo(**upstream.tracked()), bot.settings.mirrors_dir, database_url, 60)
    not_polled = upstream.commit("services/payments/n.py", "payments change not polled yet")
    untracked = "0badc0de" * 5  # a commit of a repository culprit does not track
    deploy = _deploy(upstream, commit_range="", commits=[known[:12], not_polled, untracked])

    answer = httpx.post(f"{bot.url}/changes", json=[deploy], headers=BEARER, timeout=60)

    assert answer.status_code == 200 and answer.json() == {
        "received": 1, "stored": 1, "already_present": 0,
        "unknown_commits": [{"index": 0, "id": "deploy-481", "commits": [not_polled, untracked]}]}  # fmt: skip
    with session_scope(database_url) as session:
        assert session.get(Change, "deploy-481").carries == [known]
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(deploy | {"id": "deploy-482"}) + "\n")
    shown = CliRunner().invoke(app, ["ingest", "changes", str(events)])
    assert shown.exit_code == 0 and f"not carried by event 0 (deploy-482), no stored commit: {not_polled}, {untracked}" in shown.stdout
