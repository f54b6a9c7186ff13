"""``culprit rca``, ``train`` and ``backtest`` from the terminal, on the synthetic history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from bot.cli import app
from knowledge.changes import Change
from knowledge.db import session_scope
from knowledge.errors import InputError
from tools.rca.history.cases import History

runner = CliRunner()


def test_backtest_json_has_the_headline_keys(history_files: tuple[Path, Path], data_dir: Path) -> None:
    cases, commits = history_files
    plot = data_dir / "calibration.png"
    result = runner.invoke(
        app, ["backtest", "--cases", str(cases), "--commits", str(commits), "--no-embeddings", "--json", "--plot", str(plot)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for numbers in (summary, *summary["per_repository"].values()):
        calibration = numbers["calibration"]
        assert {"ece", "brier", "bins"} <= set(calibration) and 0 <= calibration["ece"] <= 1
        assert sum(row["n"] for row in calibration["bins"]) == numbers["n_cases"]
    # Neither CULPRIT_MIN_CONFIDENCE nor CULPRIT_TARGET_PRECISION set: the default precision, 0.9, read off
    # the held-out curve (this small history's never reaches it, so the fallback 0.5 says so).
    assert summary["threshold"] == {
        "value": 0.5, "from": "the fallback threshold 0.50 (no held-out threshold reached precision 0.90)"
    }
    assert {"top1", "top5", "mrr", "recall", "baselines", "latency_ms", "n_cases", "per_repository"} <= set(summary)
    assert set(summary["baselines"]) == {"bm25", "recency"}
    assert set(summary["baselines"]["bm25"]) == {"top1", "top5", "mrr"}
    assert set(summary["latency_ms"]) == {"p50", "p95"}
    assert summary["n_cases"] == 11  # the later 30% of 36 cases
    assert summary["top5"] > summary["baselines"]["recency"]["top5"]
    assert summary["recall"] == 1.0


def test_train_says_a_promoted_version_still_answers_and_how_to_make_a_new_one_answer(
    history_files: tuple[Path, Path], database_url: str, data_dir: Path
) -> None:
    """A team retrains by hand while the weekly retrain's champion is promoted: the new file is saved, but
    the bot and `culprit rca` keep answering with the champion, and `culprit train` says so."""
    from tools.rca.judges.local import load_model
    from tools.rca.retrain import registry

    cases, commits = (str(path) for path in history_files)
    train = ["train", "--cases", cases, "--commits", commits, "--no-embeddings"]
    first = runner.invoke(app, [*train, "--json"])
    assert first.exit_code == 0, first.output
    champion = registry.add_version(load_model(Path(json.loads(first.stdout)["model"])), data_dir, database_url,
                                    figures={}, status=registry.CHALLENGER)  # fmt: skip
    registry.promote(champion.version, database_url, data_dir=data_dir)

    retrained = runner.invoke(app, [*train, "--json"])
    assert retrained.exit_code == 0, retrained.output
    said = json.loads(retrained.stdout)
    assert said["serves"] is False
    assert said["serving"] == {"version": champion.version, "model": champion.path}
    assert "culprit model retrain" in said["to_serve"]
    serving = registry.serving_model(database_url, data_dir=data_dir)
    assert serving.version == champion.version  # what the bot and `culprit rca` load

    text = runner.invoke(app, train)
    assert text.exit_code == 0, text.output
    assert f"it does not answer: the promoted model version {champion.version} at" in " ".join(text.stdout.split())
    assert "culprit model retrain" in text.stdout


def test_train_then_rca_json_from_the_store(
    history_files: tuple[Path, Path], history: History, database_url: str, data_dir: Path, monkeypatch
) -> None:  # noqa: ANN001
    from knowledge.config import get_settings
    from tests.rca.test_answers import _store_changes

    cases, commits = history_files
    trained = runner.invoke(app, ["train", "--cases", str(cases), "--commits", str(commits), "--no-embeddings", "--json"])
    assert trained.exit_code == 0, trained.output
    assert Path(json.loads(trained.stdout)["model"]) == data_dir / "models" / "ranker.model"
    assert json.loads(trained.stdout)["serves"] is True  # no promoted version: CULPRIT_RANKER_PATH answers

    _store_changes(database_url, history)
    with session_scope(database_url) as session:  # "[/...]" closes a Rich style: printed as markup, it crashed
        session.execute(update(Change).values(title="[/api] " + Change.title, author="[bold]" + Change.author))
    case = history.cases[-1]
    arguments = ["rca", case.incident.text, "--title", case.incident.title,
                 "--at", case.incident.started_at.isoformat(), "--repo", "acme/widget"]

    def rca_with_threshold(threshold: str, *extra: str):  # noqa: ANN202
        monkeypatch.setenv("CULPRIT_MIN_CONFIDENCE", threshold)
        get_settings.cache_clear()
        result = runner.invoke(app, [*arguments, *extra])
        assert result.exit_code == 0, result.output
        return result

    answer = json.loads(rca_with_threshold("0", "--json").stdout)
    assert {"incident", "confident", "confidence", "suggestions", "strongest_signals", "notes"} <= set(answer)
    assert answer["n_candidates"] == len(case.candidates)
    assert answer["confident"] and len(answer["suggestions"]) == 5
    assert all(suggestion["suggestion_id"] for suggestion in answer["suggestions"])
    assert set(case.truth.culprits) & {suggestion["change_id"] for suggestion in answer["suggestions"]}

    withheld = json.loads(rca_with_threshold("1.0", "--json").stdout)
    assert not withheld["confident"] and withheld["suggestions"] == [] and withheld["strongest_signals"]

    listed = rca_with_threshold("0").stdout
    assert "Most likely causes" in listed and f"1. {answer['suggestions'][0]['change_id'][:10]}" in listed
    assert "[/api] " in listed and "([bold]" in listed  # shown as written
    assert "Not confident" in rca_with_threshold("1.0").stdout


@pytest.mark.parametrize(
    ("command", "names_skip_bad"), [(["train"], False), (["backtest", "--no-embeddings"], False), (["export-sft"], True)]
)
def test_a_bad_history_line_names_skip_bad_only_where_the_command_accepts_it(
    history_files: tuple[Path, Path], data_dir: Path, tmp_path: Path, command: list[str], names_skip_bad: bool
) -> None:
    """``train`` and ``backtest`` told the user to "pass --skip-bad", an option they refuse."""
    _cases, commits = history_files
    cases = tmp_path / "cases.jsonl"
    cases.write_text("{not json\n")
    output = [str(tmp_path / "sft.jsonl")] if command == ["export-sft"] else []
    result = runner.invoke(app, [*command, "--cases", str(cases), "--commits", str(commits), *output])
    assert isinstance(result.exception, InputError), result.output
    message = str(result.exception)
    assert message.startswith(f"{cases}:1: ") and "nothing was loaded" in message
    assert ("--skip-bad" in message) is names_skip_bad
    if not names_skip_bad:
        assert message.endswith("(fix or delete the line)")
        refused = runner.invoke(app, [*command, "--cases", str(cases), "--commits", str(commits), "--skip-bad"])
        assert refused.exit_code == 2 and "No such option: --skip-bad" in refused.output


def test_train_on_swapped_cases_and_commits_says_they_look_swapped(history_files: tuple[Path, Path], data_dir: Path) -> None:
    cases, commits = history_files
    result = runner.invoke(app, ["train", "--cases", str(commits), "--commits", str(cases), "--no-embeddings"])
    assert isinstance(result.exception, InputError), result.output
    assert str(result.exception) == (
        f"{cases}:1: sha: Field required (the line looks like a cases file's, given as --commits: "
        "are --cases and --commits swapped?); nothing was loaded (fix or delete the line)"
    )


def test_bad_time_and_empty_store_are_one_line_errors(database_url: str) -> None:
    bad_time = runner.invoke(app, ["rca", "checkout is down", "--at", "yesterday-ish"])
    assert isinstance(bad_time.exception, InputError) and "ISO time" in str(bad_time.exception)
    empty = runner.invoke(app, ["rca", "checkout is down"])
    assert isinstance(empty.exception, InputError) and "culprit ingest" in str(empty.exception)


@pytest.mark.parametrize("at", ["0001-01-01T00:00", "0001-01-01T00:00+01:00", "1969-12-31", "9999-12-31T23:59"])
def test_a_start_time_out_of_range_is_one_line_not_an_overflow(history: History, database_url: str, at: str) -> None:
    from tests.rca.test_answers import _store_changes

    _store_changes(database_url, history)  # with changes stored, the window before the start is really built
    result = runner.invoke(app, ["rca", "checkout is down", "--at", at, "--json"])
    assert isinstance(result.exception, InputError), result.exception
    assert str(result.exception) == f"--at {at!r} is out of range; give a time from 1970-01-01 to 2999-12-31"
    assert result.stdout == ""


def test_rca_on_a_fresh_data_directory_says_how_to_fill_the_store(data_dir: Path) -> None:
    fresh = runner.invoke(app, ["rca", "checkout is down"])
    assert isinstance(fresh.exception, InputError) and "culprit ingest" in str(fresh.exception)


def test_embed_changes_precomputes_the_window_so_the_first_answer_embeds_nothing(
    history: History, trained, database_url: str, data_dir: Path  # noqa: ANN001
) -> None:
    from dataclasses import replace
    from datetime import timedelta

    from graph.rca_graph import run_rca
    from knowledge.config import Settings
    from tests.rca.test_answers import _store_changes
    from tools.rca.embeddings import ChangeEmbeddings
    from tools.rca.history.cases import case_query
    from tools.rca.resources import load_resources

    started = _store_changes(database_url, history)
    since = started - timedelta(days=Settings().window_days)
    in_window = {sha for sha, commit in history.commits.items() if commit.landed_time >= since}

    first = runner.invoke(app, ["embed-changes", "--since", since.isoformat(), "--json"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["changes"] == summary["embedded"] == len(in_window) > 50
    store = ChangeEmbeddings(data_dir / "embeddings")
    assert len(store) == len(in_window) and all(sha in store for sha in in_window)

    again = json.loads(runner.invoke(app, ["embed-changes", "--since", since.isoformat(), "--json"]).stdout)
    assert again["embedded"] == 0 and again["already_cached"] == len(in_window)

    resources = load_resources(Settings(data_dir=data_dir, database_url=database_url))
    resources.model = replace(trained, uses_embeddings=True)
    answer = run_rca(replace(case_query(history.cases[-1]), repo="acme/widget"), database_url=database_url,
                     persist=False, resources=resources)
    assert answer.suggestions or answer.strongest_signals
    assert not any("first time" in note for note in answer.notes), answer.notes


def test_embed_changes_on_an_empty_store_says_how_to_fill_it(database_url: str) -> None:
    empty = runner.invoke(app, ["embed-changes"])
    assert isinstance(empty.exception, InputError) and "culprit ingest" in str(empty.exception)
    bad = runner.invoke(app, ["embed-changes", "--since", "last week"])
    assert isinstance(bad.exception, InputError) and "--since" in str(bad.exception)
