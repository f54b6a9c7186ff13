"""``culprit ingest`` as a responder types it: counts, --json, and one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bot.cli import main
from knowledge.db import session_scope
from knowledge.incidents import Incident
from tests.ingest.synthetic_repo import SyntheticHistory, future_dated_repo
from tests.ingest.test_history import _case, _commit, _write
from tests.rca.test_answers import PERSONAL, PERSONAL_PARTS, stored_text


def _culprit(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """Run the console entry point in-process, exactly as the installed script does."""
    monkeypatch.setattr(sys, "argv", ["culprit", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


def test_history_loads_once_and_reports_counts_as_json(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    commits = _write(tmp_path / "commits.jsonl.gz", [_commit(n) for n in range(3)], bad_line="{oops")
    cases = _write(tmp_path / "cases.jsonl", [_case(n) for n in range(2)])
    args = ["ingest", "history", "--commits", str(commits), "--cases", str(cases), "--skip-bad", "--json"]

    code, out, _err = _culprit(args, monkeypatch, capsys)
    assert code == 0
    loaded = json.loads(out)["loaded"]
    assert [(r["kind"], r["new"], r["already_present"], len(r["bad_lines"])) for r in loaded] == [
        ("changes", 3, 0, 1),
        ("incidents", 2, 0, 0),
    ]
    code, out, _err = _culprit(args[:-1], monkeypatch, capsys)
    assert code == 0
    assert "changes from" in out and "0 new, 3 already present, 1 bad line skipped" in out
    assert "commits.jsonl.gz:2: invalid JSON" in out


def test_history_incidents_are_stored_without_the_e_mail_and_phone_their_files_name(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Retraining reads stored incidents into a model file, as it reads answered ones; the file stays whole."""
    case = _case(0)
    words = {"title": f"Checkout fails, {PERSONAL}", "text": f"Checkout 500s. {PERSONAL}"}
    case["incident"] = {**case["incident"], **words}
    cases = _write(tmp_path / "cases.jsonl", [case])

    code, _out, _err = _culprit(["ingest", "history", "--cases", str(cases)], monkeypatch, capsys)

    assert code == 0
    with session_scope(database_url) as session:
        incident = session.get(Incident, case["case_id"])
        assert incident is not None
        assert (incident.title, incident.text) == (
            "Checkout fails, paged [email], call [phone]", "Checkout 500s. paged [email], call [phone]"
        )
    stored = stored_text(database_url)
    assert "Checkout 500s" in stored and not [part for part in PERSONAL_PARTS if part in stored]
    assert PERSONAL in cases.read_text()


def test_a_history_file_of_nothing_but_bad_lines_fails_even_when_skipped(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cases file given as --commits: with --skip-bad every line was skipped, "0 new" and exit 0, so a
    script never learnt that nothing loaded. The other files still load, and the bad lines are listed."""
    cases = _write(tmp_path / "cases.jsonl", [_case(n) for n in range(2)])
    commits = _write(tmp_path / "commits.jsonl", [_commit(n) for n in range(3)])
    args = ["ingest", "history", "--commits", str(cases), "--commits", str(commits), "--skip-bad"]

    code, out, err = _culprit(args, monkeypatch, capsys)

    assert code == 1
    assert f"{cases}:1: sha: Field required" in out and "3 new" in out
    assert f"error: nothing loaded from {cases}: no line was good (2 bad, listed above)\n" in err
    code, out, err = _culprit([*args, "--json"], monkeypatch, capsys)
    assert code == 1 and [report["already_present"] for report in json.loads(out)["loaded"]] == [0, 3]


@pytest.mark.parametrize("as_option", ["--cases", "--commits"])
def test_a_file_given_as_the_other_kind_says_the_options_may_be_swapped(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    as_option: str,
) -> None:  # fmt: skip
    """A commits file as --cases (or the reverse) stopped with pydantic's "case_id: Field required" alone."""
    commits = _write(tmp_path / "commits.jsonl", [_commit(n) for n in range(2)])
    cases = _write(tmp_path / "cases.jsonl", [_case(n) for n in range(2)])
    wrong, missing, other = (commits, "case_id", "commits") if as_option == "--cases" else (cases, "sha", "cases")

    code, out, err = _culprit(["ingest", "history", as_option, str(wrong)], monkeypatch, capsys)

    assert code == 1 and out == ""
    assert (
        f"{wrong}:1: {missing}: Field required (the line looks like a {other} file's, given as {as_option}: "
        "are --cases and --commits swapped?); nothing was loaded" in err
    )


def test_git_on_a_fresh_data_dir_just_works(
    data_dir: Path, synthetic_history: SyntheticHistory, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    args = ["ingest", "git", str(synthetic_history.path), "--repo", "acme/shop", "--since", "2023-11-15", "--json"]
    code, out, _err = _culprit(args, monkeypatch, capsys)

    assert code == 0 and (data_dir / "culprit.db").exists()
    expected = sum(1 for change in synthetic_history.changes if change.landed_time >= 1_700_006_400)
    assert json.loads(out)["loaded"][0]["new"] == expected
    code, out, _err = _culprit(args, monkeypatch, capsys)
    idle = json.loads(out)["loaded"][0]
    assert (code, idle["new"], idle["already_present"], idle["commits_read"]) == (0, 0, expected, 0)


def test_git_counts_and_lists_the_commits_dated_in_the_future(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A commit dated 2099 is stored as landing when read: the summary counts it and lists it by sha and why."""
    shas = future_dated_repo(tmp_path / "shop")

    code, out, _err = _culprit(["ingest", "git", str(tmp_path / "shop"), "--repo", "acme/shop"], monkeypatch, capsys)

    assert code == 0
    assert "4 new, 0 already present, 2 stored with a note" in out
    assert f"note commit {shas['Wrong clock']}: commit date 2099-01-01T00:00:00Z is in the future" in out
    assert "stored as landing when culprit read it" in out


def test_a_repository_name_that_reads_as_rich_markup_is_shown_not_parsed(
    data_dir: Path, synthetic_history: SyntheticHistory, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # "[/]" closes a Rich style: written into a progress bar as markup, it crashed the command.
    args = ["ingest", "git", str(synthetic_history.path), "--repo", "acme/[/]shop", "--since", "2023-11-15"]
    code, out, err = _culprit(args, monkeypatch, capsys)

    assert code == 0, err
    assert "acme/[/]shop" in out


def test_ownership_and_catalog_commands(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "CODEOWNERS").write_text("* @acme/platform\n")
    (tmp_path / "MAINTAINERS").write_text("NET\nM:\tJane <j@x>\nF:\tnet/\n")
    (tmp_path / "catalog-info.yaml").write_text("kind: Component\nmetadata: {name: api}\nspec: {owner: team-api}\n")

    for command in ("codeowners", "maintainers", "catalog"):
        code, out, _err = _culprit(["ingest", command, str(tmp_path / {
            "codeowners": "CODEOWNERS", "maintainers": "MAINTAINERS", "catalog": "catalog-info.yaml"}[command]),
            "--json"], monkeypatch, capsys)  # fmt: skip
        assert code == 0
        assert json.loads(out)["loaded"][0]["new"] == 1, command


def test_reattribute_places_changes_loaded_before_the_catalog(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    from knowledge.changes import Change
    from knowledge.db import session_scope
    from knowledge.ingest.change_store import store_changes
    from knowledge.ingest.progress import Silent
    from tests.changes import change_record

    landed = datetime(2025, 3, 20, tzinfo=UTC)
    store_changes(database_url, [change_record("c1", "api: retry", landed, ["services/api/retry.py"])], Silent())
    (tmp_path / "catalog-info.yaml").write_text("kind: Component\nmetadata: {name: api}\nspec: {owner: team-api}\n")
    code, _out, _err = _culprit(["ingest", "catalog", str(tmp_path / "catalog-info.yaml")], monkeypatch, capsys)
    assert code == 0
    with session_scope(database_url) as session:
        assert session.get(Change, "c1").services == ["api"]  # the changed catalog re-attributed it by itself
        session.get(Change, "c1").services = []
    code, out, _err = _culprit(["ingest", "reattribute", "--json"], monkeypatch, capsys)
    assert (code, json.loads(out)) == (0, {"changes": 1, "updated": 1})
    with session_scope(database_url) as session:
        assert session.get(Change, "c1").services == ["api"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "git", "{tmp}/nowhere"], "repository not found: {tmp}/nowhere"),
        (["ingest", "git", "{tmp}"], "{tmp} is not a git repository"),
        (["ingest", "history", "--commits", "{tmp}/bad.jsonl"], "{tmp}/bad.jsonl:2: invalid JSON"),
        (["ingest", "history"], "nothing to load: give --commits FILE and/or --cases FILE"),
        (["ingest", "catalog", "{tmp}/broken.yaml"], "{tmp}/broken.yaml:2: malformed YAML"),
        (["ingest", "codeowners", "{tmp}/CODEOWNERS"], "file not found: {tmp}/CODEOWNERS"),
    ],
)
def test_user_errors_are_one_line_and_exit_1(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    args: list[str], message: str,
) -> None:  # fmt: skip
    (tmp_path / "bad.jsonl").write_text(json.dumps(_commit(1)) + "\n{oops\n")
    (tmp_path / "broken.yaml").write_text("kind: Component\n\tmetadata: {name: api}\n")

    code, out, err = _culprit([arg.format(tmp=tmp_path) for arg in args], monkeypatch, capsys)

    assert code == 1
    lines = [line for line in err.splitlines() if line.strip() and "━" not in line]
    assert lines == [lines[0]] and lines[0].startswith("error: ")
    assert message.format(tmp=tmp_path) in lines[0]
    assert "Traceback" not in err + out


def test_an_unreachable_database_is_one_line(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "CODEOWNERS").write_text("* @acme/platform\n")
    monkeypatch.setenv("CULPRIT_DATABASE_URL", "postgresql+psycopg://culprit@127.0.0.1:1/culprit")

    code, out, err = _culprit(["ingest", "codeowners", str(tmp_path / "CODEOWNERS")], monkeypatch, capsys)

    assert code == 1 and out == ""
    assert err.startswith("error: cannot reach the database at postgresql+psycopg://culprit@127.0.0.1:1")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
