"""Every answer says how fresh each source is; when a source's data ends before the incident began,
the answer says so and how to fix it instead of a 0% confidence; /metrics shows each source's lag."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.blocks import rca_message
from graph.rca_graph import run_rca
from knowledge.config import TrackedRepo
from knowledge.db import session_scope, utcnow
from knowledge.sources.freshness import BY_HAND, record_check
from knowledge.sources.polling import poll_repository
from tests.bot.conftest import StartBot
from tests.sources.upstream import Upstream
from tools.rca.answers import IncidentQuery, RcaAnswer
from tools.rca.resources import RcaResources


def _ask(database_url: str, minutes_ago: float = 0) -> RcaAnswer:
    query = IncidentQuery(text="checkout returns 500 on card payments", started_at=utcnow() - timedelta(minutes=minutes_ago))
    return run_rca(query, database_url=database_url, resources=RcaResources(poll_seconds=60), persist=False)


def test_a_polled_repository_is_reported_fresh(database_url: str, tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path / "shop")
    upstream.commit("src/pay.py", "pay: new card tokenizer")
    poll_repository(TrackedRepo(**upstream.tracked()), tmp_path / "mirrors", database_url, 60)

    answer = _ask(database_url)

    (source,) = answer.freshness
    assert not source.stale and source.summary.startswith("acme/shop: changes known up to ")
    assert source.summary.endswith(" s ago (polled)")
    context = str(rca_message(answer).blocks)
    assert "🕒 acme/shop: changes known up to" in context and "stale" not in context


def test_data_older_than_the_incident_says_stale_and_how_to_fix_it_not_zero_percent(
    database_url: str, tmp_path: Path
) -> None:
    upstream = Upstream.create(tmp_path / "shop")
    upstream.commit("src/pay.py", "pay: new card tokenizer", when=int((utcnow() - timedelta(days=20)).timestamp()))
    poll_repository(TrackedRepo(**upstream.tracked()), tmp_path / "mirrors", database_url, 60, claim_slot=False)
    with session_scope(database_url) as session:  # as `culprit ingest git` leaves it, run three hours ago
        record_check(session, "acme/shop", BY_HAND, at=utcnow() - timedelta(hours=3))

    answer = _ask(database_url)
    message = rca_message(answer)

    assert not answer.confident and [source.source for source in answer.stale_sources] == ["acme/shop"]
    assert "changes known up to 3 h ago (ingested by hand)" in answer.stale_sources[0].summary
    assert "culprit ingest git" in answer.stale_sources[0].fix and "CULPRIT_REPOS" in answer.stale_sources[0].fix
    shown = str(message.blocks)
    assert "stale" in message.text and "My knowledge of recent changes is stale" in shown
    assert "0%" not in shown and "Not confident" not in message.text
    assert not any(source.stale for source in _ask(database_url, minutes_ago=200).freshness)  # an older incident is covered


def test_a_confident_answer_on_stale_data_warns(database_url: str, tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path / "shop")
    upstream.commit("src/pay.py", "pay: new card tokenizer", when=int((utcnow() - timedelta(hours=5)).timestamp()))
    poll_repository(TrackedRepo(**upstream.tracked()), tmp_path / "mirrors", database_url, 60, claim_slot=False)
    with session_scope(database_url) as session:
        record_check(session, "acme/shop", BY_HAND, at=utcnow() - timedelta(hours=4))

    answer = _ask(database_url)

    assert answer.confident and answer.suggestions  # the uncalibrated blend names the one change it knows
    assert any(note.startswith("acme/shop may be stale") and "culprit ingest git" in note for note in answer.notes)


def test_a_failing_poll_is_named_in_the_fix(database_url: str, tmp_path: Path) -> None:
    missing = TrackedRepo(name="acme/gone", path=tmp_path / "no-such-repo")
    result = poll_repository(missing, tmp_path / "mirrors", database_url, 60)

    (source,) = _ask(database_url).stale_sources
    assert result.error and source.summary.startswith("acme/gone: not polled successfully yet")
    assert "polling acme/gone fails" in source.fix


def test_metrics_show_each_source_lag(database_url: str, start_bot: StartBot, tmp_path: Path) -> None:
    with session_scope(database_url) as session:
        record_check(session, "acme/web", BY_HAND, at=utcnow() - timedelta(minutes=30))
    bot = start_bot(database_url)

    families = text_string_to_metric_families(httpx.get(f"{bot.url}/metrics", timeout=30).text)
    lags = {
        sample.labels["source"]: sample.value
        for family in families if family.name == "culprit_source_lag_seconds" for sample in family.samples
    }  # fmt: skip
    assert 1800 <= lags["acme/web"] < 1800 + 600


def test_the_terminal_answer_labels_each_source_by_its_state(database_url: str, tmp_path: Path) -> None:
    """`culprit rca` listed every source under "fresh:", the stale one too; the Slack line marked none."""
    from typer.testing import CliRunner

    from bot.cli import app

    upstream = Upstream.create(tmp_path / "shop")
    upstream.commit("src/pay.py", "pay: new card tokenizer", when=int((utcnow() - timedelta(hours=5)).timestamp()))
    poll_repository(TrackedRepo(**upstream.tracked()), tmp_path / "mirrors", database_url, 60, claim_slot=False)
    with session_scope(database_url) as session:  # as `culprit ingest git` leaves it, run three hours ago
        record_check(session, "acme/shop", BY_HAND, at=utcnow() - timedelta(hours=3))
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"id": "flag-1", "kind": "flag", "service": "checkout", "title": "a flag",
                                  "time": (utcnow() - timedelta(hours=3)).isoformat()}) + "\n")  # fmt: skip
    assert CliRunner().invoke(app, ["ingest", "changes", str(events)]).exit_code == 0

    shown = CliRunner().invoke(app, ["rca", "checkout returns 500 on card payments"])

    assert shown.exit_code == 0, shown.output
    assert "\nstale: acme/shop: changes known up to 3 h ago (ingested by hand)\n" in shown.stdout
    assert "\nnot judged: flag: last change event 3 h ago\n" in shown.stdout
    assert "fresh:" not in shown.stdout
    polled = _ask(database_url, minutes_ago=200)  # an older incident is covered by the same data
    assert [source.label for source in polled.freshness] == ["fresh", "not judged"]
    assert "⚠️ stale: acme/shop" in str(rca_message(_ask(database_url)).blocks)
