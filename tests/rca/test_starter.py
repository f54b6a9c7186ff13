"""The starter ranker shipped in the package: portable, small, and named in every answer it judges."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from typer.testing import CliRunner

from bot.cli import app
from knowledge.config import get_settings
from tests.rca.test_answers import _store_changes
from tests.tripwire import booby_trapped_pickle
from tools.rca.history.cases import History
from tools.rca.history.training import train_model
from tools.rca.judges.local import PICKLED_NAME, STARTER, TRAINED, RankerModel, load_model, save_model
from tools.rca.judges.starter import STARTER_FILE, load_starter

runner = CliRunner()


def test_the_shipped_starter_knows_no_repository_of_its_own() -> None:
    model = load_starter()
    assert model is not None and model.origin == STARTER
    assert model.component_maps == {} and model.similar_changes == {} and model.past_incidents is None
    assert not model.uses_embeddings
    assert set(model.repos) == {"curl/curl", "git/git", "haproxy/haproxy"}
    assert STARTER_FILE.stat().st_size < 1_000_000
    assert model.description.startswith("the starter ranker")


def test_portable_training_keeps_only_trees_and_calibration(history: History, tmp_path: Path) -> None:
    model = replace(train_model(history, history.cases, None, portable=True), origin=STARTER)
    loaded = load_model(save_model(model, tmp_path / "starter.model"))
    assert loaded.origin == STARTER
    assert loaded.component_maps == {} and loaded.similar_changes == {} and loaded.past_incidents is None
    ordinary = load_model(save_model(train_model(history, history.cases, None), tmp_path / "own.model"))
    assert ordinary.origin == TRAINED and ordinary.component_maps


def test_rca_uses_the_starter_until_the_team_trains_its_own(
    history_files: tuple[Path, Path], history: History, database_url: str, data_dir: Path
) -> None:
    _store_changes(database_url, history)
    case = history.cases[-1]
    arguments = ["rca", case.incident.text, "--title", case.incident.title,
                 "--at", case.incident.started_at.isoformat(), "--repo", "acme/widget"]  # fmt: skip

    first = runner.invoke(app, [*arguments, "--json"])
    assert first.exit_code == 0, first.output
    answer = json.loads(first.stdout)
    assert answer["model"].startswith("the starter ranker")
    assert not any("heuristic" in note or "never learned" in note or "could not be loaded" in note for note in answer["notes"])
    assert "judged by the starter ranker" in runner.invoke(app, arguments).stdout

    cases, commits = history_files
    trained = runner.invoke(app, ["train", "--cases", str(cases), "--commits", str(commits), "--no-embeddings"])
    assert trained.exit_code == 0, trained.output
    own = json.loads(runner.invoke(app, [*arguments, "--json"]).stdout)
    assert own["model"] == f"the ranker trained on {len(history.cases)} cases from acme/widget"


def test_a_damaged_trained_model_is_named_in_the_answer_not_silently_replaced(
    history: History, database_url: str, data_dir: Path
) -> None:
    _store_changes(database_url, history)
    case = history.cases[-1]
    damaged = get_settings().resolved_ranker_path
    damaged.parent.mkdir(parents=True, exist_ok=True)
    damaged.write_bytes(b"PK\x03\x04 half a model, cut short by a full disk")

    arguments = ["rca", case.incident.text, "--at", case.incident.started_at.isoformat(), "--repo", "acme/widget", "--json"]

    with capture_logs() as logs:
        answers = [runner.invoke(app, arguments) for _ in range(2)]  # the bot reloads its model every few minutes

    for result in answers:
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        assert answer["model"].startswith("the starter ranker")
        [note] = [note for note in answer["notes"] if "could not be loaded" in note]
        assert note.startswith(f"the trained model at {damaged} could not be loaded (")
        assert note.endswith("); the starter ranker answers instead")
    warnings = [entry for entry in logs if entry["event"] == "trained_model_unreadable"]
    assert [(entry["log_level"], entry["path"]) for entry in warnings] == [("warning", str(damaged))]


def test_an_old_pickled_model_left_where_culprit_kept_it_is_named_in_the_answer(
    history: History, database_url: str, data_dir: Path, tmp_path: Path
) -> None:
    _store_changes(database_url, history)
    case = history.cases[-1]
    marker = tmp_path / "ranker-was-unpickled"
    old = get_settings().resolved_ranker_path.with_name(PICKLED_NAME)  # what culprit before model format 1 wrote
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(booby_trapped_pickle(marker))

    arguments = ["rca", case.incident.text, "--at", case.incident.started_at.isoformat(), "--repo", "acme/widget", "--json"]
    with capture_logs() as logs:
        answers = [runner.invoke(app, arguments) for _ in range(2)]

    for result in answers:
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        assert answer["model"].startswith("the starter ranker")
        [note] = [note for note in answer["notes"] if str(old) in note]
        assert "is in an old format (pickle), not loaded; retrain with `culprit train`" in note
        assert note.endswith("the starter ranker answers instead")
    warnings = [entry for entry in logs if entry["event"] == "trained_model_unreadable"]
    assert [(entry["log_level"], entry["path"]) for entry in warnings] == [("warning", str(old))]
    assert not marker.exists()


def test_a_promoted_version_whose_file_is_damaged_or_gone_is_named_and_the_starter_answers(
    history: History, trained: RankerModel, database_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.doctor import DoctorOptions
    from bot.doctor.store import check_model
    from bot.runtime import RcaInvestigator
    from tools.rca.answers import IncidentQuery
    from tools.rca.retrain import registry

    _store_changes(database_url, history)
    promoted = registry.add_version(trained, data_dir, database_url, figures={}, status=registry.CHALLENGER)
    registry.promote(promoted.version, database_url, data_dir=data_dir)
    monkeypatch.setenv("CULPRIT_DATABASE_URL", database_url)
    get_settings.cache_clear()
    case = history.cases[-1]
    query = IncidentQuery(text=case.incident.text, title=case.incident.title, started_at=case.incident.started_at)
    assert RcaInvestigator(get_settings())(query).model.startswith("the ranker trained on")

    path = Path(promoted.path)
    for damage, reason in ((lambda: path.write_bytes(b"PK\x03\x04 cut short"), "("), (path.unlink, "(its file is gone)")):
        damage()
        with capture_logs() as logs:
            answer = RcaInvestigator(get_settings())(query)
        assert answer.model.startswith("the starter ranker") and answer.suggestions + answer.strongest_signals
        named = f"the promoted model version {promoted.version} at {path} could not be loaded {reason}"
        [note] = [note for note in answer.notes if "promoted model version" in note]
        assert note.startswith(named) and note.endswith("); the starter ranker answers instead")
        warnings = [entry for entry in logs if entry["event"] == "promoted_model_unreadable"]
        assert [(entry["log_level"], entry["version"]) for entry in warnings] == [("warning", promoted.version)]
        [doctor] = check_model(get_settings(), DoctorOptions())
        assert doctor.status == "fail" and doctor.detail.startswith(named)
        assert doctor.detail.endswith("the starter ranker answers instead") and "culprit model" in doctor.fix


def test_culprit_rca_answers_with_the_promoted_version_as_the_bot_does(
    history: History, trained: RankerModel, database_url: str, data_dir: Path
) -> None:
    """`culprit rca` read CULPRIT_RANKER_PATH while the bot served the promoted version: the terminal and
    the channel gave different answers to the same incident."""
    from tools.rca.retrain import registry

    _store_changes(database_url, history)
    promoted = registry.add_version(trained, data_dir, database_url, figures={}, status=registry.CHALLENGER)
    registry.promote(promoted.version, database_url, data_dir=data_dir)
    assert not get_settings().resolved_ranker_path.exists()  # only the promoted version's own file holds a model
    case = history.cases[-1]
    arguments = ["rca", case.incident.text, "--at", case.incident.started_at.isoformat(), "--repo", "acme/widget", "--json"]

    result = runner.invoke(app, arguments)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == f"the ranker trained on {trained.n_cases} cases from acme/widget"
