"""Mining past investigations from a real git repository's fix commits."""

from __future__ import annotations

import json
import sys
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from knowledge.db import migrate, session_scope
from knowledge.errors import InputError
from knowledge.incidents import Incident, RootCause
from knowledge.ingest import git_log
from knowledge.ingest.fix_links import FIXES, MAX_MESSAGE_CHARS, REGRESSION, REVERT, SINCE, Link, find_links
from knowledge.ingest.fix_links import incident_report
from knowledge.ingest import mining
from knowledge.ingest.history_files import MAX_TITLE_CHARS, read_cases, read_commits
from knowledge.ingest.mining import mine_history
from tests.ingest.fix_history import FixHistory, write_fix_history
from tests.ingest.synthetic_repo import commit_object, git_as_ana, latin_1_commit, one_commit_repo, stalled_change_repo
from tests.ingest.synthetic_repo import headerless_latin_1_commit


@pytest.fixture(scope="module")
def fix_history(tmp_path_factory: pytest.TempPathFactory) -> FixHistory:
    return write_fix_history(tmp_path_factory.mktemp("repos") / "service")


def test_every_recognised_form_is_found_with_its_kind() -> None:
    sha = "3f2a9c1b7d"
    assert find_links(f"x: fix y\n\nFixes: {sha} (\"x: add y\")") == [Link(FIXES, sha)]
    assert find_links(f"Revert \"x\"\n\nThis reverts commit {sha}.") == [Link(REVERT, sha)]
    assert find_links("Revert \"x: add y\"\n\nIt broke z.") == [Link(REVERT, title="x: add y")]
    for prose in (f"introduced by {sha}", f"introduced in {sha}", f"regression since {sha}", f"broken by {sha}"):
        assert find_links(f"z: stop a crash\n\n{prose}.") == [Link(REGRESSION, sha)], prose
    assert find_links(f"z: fix the count\n\nAfter commit {sha} the count is off.") == [Link(SINCE, sha)]
    assert find_links(f"docs: describe the option added in {sha}") == []
    assert find_links(f"z: fix it\n\n(cherry picked from commit {sha}0000000000000000000000000000)") == []
    assert find_links("z: fix the 20231115 release date") == []
    assert find_links("z: fix the build\n\nCommit 9867987 broke it.") == [Link(REGRESSION, "9867987")]


def test_the_report_names_no_change() -> None:
    message = (
        'net: fix the reconnect loop\n\nCommit 3f2a9c1b7d ("net: retry forever") made the loop spin.\n\n'
        'Fixes: 3f2a9c1b7d ("net: retry\n forever")\nSigned-off-by: Dev <dev@example.org>'
    )
    title, text = incident_report(message, [FIXES], ["net: retry forever"])
    assert title == "net: fix the reconnect loop"
    assert text == "A recent change made the loop spin."
    title, text = incident_report('Revert "net: retry forever"\n\nThis reverts commit 3f2a9c1b7d.\n\n'
                                  "Reverted: connections pile up.", [REVERT], ["net: retry forever"])  # fmt: skip
    assert title == "" and "retry forever" not in text and "3f2a9c1b7d" not in text
    assert text == ": connections pile up."


def test_mining_finds_every_planted_case_and_nothing_else(fix_history: FixHistory, tmp_path: Path) -> None:
    report = mine_history(fix_history.path, tmp_path, repo_name="acme/service")

    cases = read_cases(tmp_path / "cases-acme__service.jsonl.gz").records
    found = {
        (case.incident.title or "", fix_history_title(fix_history, case.truth.culprits), case.truth.link_kind)
        for case in cases
    }
    planted = {(p.fix_title if p.kind != REVERT else "", p.culprit_title, p.kind) for p in fix_history.planted}
    assert found == planted
    assert dict(report.skipped) == fix_history.skipped
    assert report.cases == len(fix_history.planted) == 6

    commits = {commit.id: commit for commit in read_commits(tmp_path / "commits-acme__service.jsonl.gz").records}
    for case in cases:
        start = case.incident.time - 14 * 86400
        assert set(case.truth.culprits) <= set(case.candidates) <= set(commits)
        assert all(start <= commits[sha].landed_time.timestamp() < case.incident.time for sha in case.candidates)
        words = f"{case.incident.title}\n{case.incident.text}"
        for sha in case.truth.culprits:
            assert sha[:7] not in words and commits[sha].title not in words


def fix_history_title(history: FixHistory, culprits: list[str]) -> str:
    titles = {sha: title for title, sha in history.shas.items()}
    (culprit,) = culprits
    return titles[culprit]


def test_since_leaves_out_older_fixes(fix_history: FixHistory, tmp_path: Path) -> None:
    report = mine_history(fix_history.path, tmp_path, repo_name="acme/service", since=_after_third_fix(fix_history))
    assert report.cases == 3


def _after_third_fix(history: FixHistory):  # noqa: ANN202
    from datetime import UTC, datetime

    import subprocess

    log = subprocess.run(["git", "-C", str(history.path), "log", "--format=%at %s", "--reverse"],
                         capture_output=True, text=True, check=True).stdout.splitlines()  # fmt: skip
    third = next(line for line in log if history.planted[2].fix_title in line)
    return datetime.fromtimestamp(int(third.split()[0]) + 1, UTC)


def test_history_mine_loads_the_cases_once(
    data_dir: Path, fix_history: FixHistory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["culprit", "history", "mine", str(fix_history.path), "--repo", "acme/service", "--json"]
    for new_incidents in (6, 0):
        monkeypatch.setattr(sys, "argv", args)
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code in (0, None)
        output = json.loads(capsys.readouterr().out)
        assert output["cases"] == 6 and output["skipped"]["not_on_branch"] == 1
        assert [load["new"] for load in output["loaded"]][1] == new_incidents
    url = f"sqlite:///{data_dir / 'culprit.db'}"
    migrate(url)
    with session_scope(url) as session:
        incidents = session.scalars(select(Incident).where(Incident.repo == "acme/service")).all()
        causes = session.scalars(select(RootCause.change_id)).all()
    assert len(incidents) == 6
    assert set(causes) == {sha for title, sha in fix_history.shas.items() if any(
        p.culprit_title == title for p in fix_history.planted)}  # fmt: skip


def test_the_demo_organisation_as_a_git_repository_mines_to_its_own_fixes(tmp_path: Path) -> None:
    from knowledge.demo import generate_organisation
    from tests.ingest.demo_repo import write_demo_repository

    org = generate_organisation(seed=5, n_changes=400, n_incidents=30, days=45)
    real = write_demo_repository(org, tmp_path / "demo")
    changes = {change.id: change for change in org.changes}
    expected = set()
    for incident in org.incidents:
        fix, culprit = changes[incident.fix_id or ""], changes[incident.culprits[0]]
        if fix.author_time - 14 * 86400 <= culprit.landed_time < fix.author_time:
            expected.add((real[fix.id], real[culprit.id], incident.link_kind))
    report = mine_history(tmp_path / "demo", tmp_path / "out", repo_name="acme/platform")

    cases = read_cases(tmp_path / "out" / "cases-acme__platform.jsonl.gz").records
    found = {(case.case_id.split("@")[1], case.truth.culprits[0], case.truth.link_kind) for case in cases}
    assert {(fix[:12], culprit, kind) for fix, culprit, kind in expected} == found
    assert len(expected) >= 25 and report.cases == len(expected)
    assert sum(report.skipped.values()) == len(org.incidents) - len(expected)


def test_train_from_repo_mines_then_trains(
    data_dir: Path, fix_history: FixHistory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools.rca.judges.local import TRAINED, load_model

    monkeypatch.setattr(sys, "argv", ["culprit", "train", "--from-repo", str(fix_history.path), "--no-embeddings", "--json"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code in (0, None)
    summary = json.loads(capsys.readouterr().out)
    assert summary["cases"] == 6 and summary["repos"] == ["service"]
    model = load_model(Path(summary["model"]))
    assert model.origin == TRAINED and model.n_cases == 6
    assert (data_dir / "mined" / "cases-service.jsonl.gz").exists()


def test_train_from_repo_learns_the_repository_under_the_name_its_changes_were_ingested_with(
    data_dir: Path, fix_history: FixHistory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A team that ran `ingest git PATH --repo acme/service` trains on the same clone: the model must know
    acme/service, not the folder's name, or every answer says the model never learned the repository."""
    command = ["culprit", "train", "--from-repo", str(fix_history.path), "--repo", "acme/service", "--no-embeddings"]
    monkeypatch.setattr(sys, "argv", [*command, "--json"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code in (0, None)
    summary = json.loads(capsys.readouterr().out)
    assert summary["repos"] == ["acme/service"]
    assert (data_dir / "mined" / "cases-acme__service.jsonl.gz").exists()

    monkeypatch.setattr(sys, "argv", [*command, "--repo", "acme/other"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    assert "2 --repo for 1 --from-repo" in capsys.readouterr().err


def test_a_clone_whose_config_writes_latin_1_is_mined_with_its_words_as_written(tmp_path: Path) -> None:
    """In a clone with ``i18n.commitEncoding = ISO-8859-1`` git prints its log in Latin-1 unless asked for
    UTF-8: the fix's report (the incident a model learns from) lost every accented letter to U+FFFD."""
    repo = tmp_path / "shop"
    one_commit_repo(repo, "Start the app")
    culprit = latin_1_commit(repo, "José Müller", "Arrondi à l'euro près")
    latin_1_commit(repo, "José Müller", f"Corrige le débit refusé des cartes\n\nFixes: {culprit[:12]}", 1_710_000_200)

    mine_history(repo, tmp_path / "out", repo_name="acme/shop")

    [case] = read_cases(tmp_path / "out" / "cases-acme__shop.jsonl.gz").records
    assert case.truth.culprits == [culprit] and case.incident.title == "Corrige le débit refusé des cartes"
    commits = {commit.id: commit for commit in read_commits(tmp_path / "out" / "commits-acme__shop.jsonl.gz").records}
    assert (commits[culprit].author, commits[culprit].title) == ("José Müller", "Arrondi à l'euro près")


def test_latin_1_bytes_under_no_encoding_header_are_mined_with_their_words_as_written(tmp_path: Path) -> None:
    """Old histories hold Latin-1 messages with no ``encoding`` header: read as UTF-8, the fix's report
    (the incident a model learns from) and the culprit's author lost every accented letter to U+FFFD."""
    repo = tmp_path / "shop"
    one_commit_repo(repo, "Start the app")
    culprit = headerless_latin_1_commit(repo, "José Müller", "Arrondi à l'euro près", "prix.py")
    headerless_latin_1_commit(repo, "José Müller", f"Corrige le débit refusé des cartes\n\nFixes: {culprit[:12]}",
                              "cartes.py", 1_710_000_200)  # fmt: skip

    mine_history(repo, tmp_path / "out", repo_name="acme/shop")

    [case] = read_cases(tmp_path / "out" / "cases-acme__shop.jsonl.gz").records
    assert case.truth.culprits == [culprit] and case.incident.title == "Corrige le débit refusé des cartes"
    commits = {commit.id: commit for commit in read_commits(tmp_path / "out" / "commits-acme__shop.jsonl.gz").records}
    assert (commits[culprit].author, commits[culprit].title) == ("José Müller", "Arrondi à l'euro près")


def test_commits_dated_outside_1970_to_9999_are_left_out_with_their_reason(tmp_path: Path) -> None:
    repo = tmp_path / "clock"
    base = one_commit_repo(repo, "pay: retry once")
    undated = commit_object(repo, base, "pay: written at no time", "soon", "1710000100")
    late = commit_object(repo, undated, "pay: landed in year 11476", "1710000200", "300000000000")
    fix = commit_object(repo, late, f"Revert \"pay: retry once\"\n\nThis reverts commit {base}.", "1710000300", "1710000300")
    git_as_ana(repo, "update-ref", "refs/heads/main", fix)

    report = mine_history(repo, tmp_path / "out", repo_name="acme/clock")

    assert report.commits_read == 4
    assert report.refused_commits == {
        undated: "author date (none) is not a time from 1970 to 9999; the commit is not stored",
        late: "commit date 300000000000 is not a time from 1970 to 9999; the commit is not stored",
    }
    assert undated not in {c.id for c in read_commits(tmp_path / "out" / "commits-acme__clock.jsonl.gz").records}


def _one_fix(
    repo: Path, culprit_message: str, fix_title: str = "pay: stop the double charge", also: str = "", author: str = ""
) -> str:
    """A repository of a start, a culprit with ``culprit_message`` (touching ``also`` too, a path staged
    without a file, so it may be longer than any file system allows; by ``author`` if given) and a fix
    naming it; the culprit's sha."""
    one_commit_repo(repo, "pay: start")
    (repo / "app.py").write_text("print('v2')\n")
    if also:
        blob = git_as_ana(repo, "hash-object", "-w", "app.py").strip()
        git_as_ana(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{also}")
    (repo.parent / "message").write_text(culprit_message)
    by = [f"--author={author}"] if author else []
    git_as_ana(repo, "commit", "-q", "-a", "-F", str(repo.parent / "message"), *by, when=1_710_000_100)
    culprit = git_as_ana(repo, "rev-parse", "HEAD").strip()
    (repo.parent / "message").write_text(f"{fix_title}\n\nThe retry charged cards twice.\n\nFixes: {culprit[:12]}")
    git_as_ana(repo, "commit", "-q", "--allow-empty", "-F", str(repo.parent / "message"), when=1_710_000_200)
    return culprit


def test_a_culprit_whose_message_is_past_a_history_files_bounds_is_mined_into_a_line_that_loads(tmp_path: Path) -> None:
    culprit = _one_fix(tmp_path / "shop", "pay: retry " + "x" * 20_000 + "\n\n" + "y" * 200_000)

    assert mine_history(tmp_path / "shop", tmp_path / "out", repo_name="acme/shop").cases == 1

    loaded = {change.id: change for change in read_commits(tmp_path / "out" / "commits-acme__shop.jsonl.gz").records}
    assert loaded[culprit].title.startswith("pay: retry xxx") and len(loaded[culprit].body) == 100_000


def test_a_fix_whose_message_is_megabytes_long_is_read_keeping_only_what_mining_uses(tmp_path: Path) -> None:
    """A generated or hostile fix message of 200 MB was held whole (about 1 GB) while the history was read;
    only its first MAX_MESSAGE_CHARS are ever looked at, so only they are kept, and the rest streams past."""
    message = "pay: stop the double charge\n\nFixes: {culprit}\n\n" + "Le débit a échoué deux fois.\n" * 600_000
    repo = tmp_path / "shop"
    culprit = _one_fix(repo, "pay: retry")
    (tmp_path / "message").write_text(message.format(culprit=culprit[:12]))
    git_as_ana(repo, "commit", "-q", "--allow-empty", "-F", str(tmp_path / "message"), when=1_710_000_300)
    fix = git_as_ana(repo, "rev-parse", "HEAD").strip()

    tracemalloc.start()
    try:
        messages, links = mining._read_messages(repo, fix, {})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert messages[fix].message == message.format(culprit=culprit[:12])[:MAX_MESSAGE_CHARS]
    assert links[fix] == [Link(FIXES, sha=culprit[:12])]
    assert len(message.encode()) > 16_000_000 and peak < 8_000_000


def test_a_fix_whose_message_starts_with_megabytes_of_blank_lines_still_names_its_culprit(tmp_path: Path) -> None:
    """git keeps the blank lines a message was written with (``--cleanup=verbatim``, a tool's commit) and
    ``%B`` prints them: the bounded read of a message held only those, so the fix's link was never seen."""
    repo = tmp_path / "shop"
    one_commit_repo(repo, "pay: start")
    (repo / "app.py").write_text("print('v2')\n")
    git_as_ana(repo, "commit", "-q", "-am", "pay: retry", when=1_710_000_100)
    culprit = git_as_ana(repo, "rev-parse", "HEAD").strip()
    fix = "pay: stop the double charge\n\nThe retry charged cards twice.\n\nFixes: " + culprit[:12]
    (tmp_path / "message").write_text("\n \t\n" * 200_000 + fix)
    git_as_ana(repo, "commit", "-q", "--allow-empty", "--cleanup=verbatim", "-F", str(tmp_path / "message"),
               when=1_710_000_200)  # fmt: skip

    report = mine_history(repo, tmp_path / "out", repo_name="acme/shop")

    assert report.link_kinds == {FIXES: 1} and report.cases == 1
    case = read_cases(tmp_path / "out" / "cases-acme__shop.jsonl.gz").records[0]
    assert case.incident.title == "pay: stop the double charge" and case.truth.culprits == [culprit]


def test_a_culprit_whose_author_is_longer_than_a_history_line_holds_is_mined_into_a_line_that_loads(
    tmp_path: Path,
) -> None:
    """git takes any author it is given; written whole, a name over 1,000 characters made a line
    ``ingest history`` refuses, failing the whole load."""
    name, email = "Ana " + "de la " * 300 + "Cruz", "ana." + "x" * 1200 + "@example.org"
    culprit = _one_fix(tmp_path / "shop", "pay: retry", author=f"{name} <{email}>")

    assert mine_history(tmp_path / "shop", tmp_path / "out", repo_name="acme/shop").cases == 1

    loaded = {change.id: change for change in read_commits(tmp_path / "out" / "commits-acme__shop.jsonl.gz").records}
    assert (loaded[culprit].author, loaded[culprit].email) == (name[:1000], email[:1000])


def test_a_culprit_touching_a_path_longer_than_a_file_system_allows_is_mined_into_a_line_that_loads(
    tmp_path: Path,
) -> None:
    """Git stores any path a crafted tree holds; one past PATH_MAX names no file anyone can check out."""
    culprit = _one_fix(tmp_path / "shop", "pay: retry", also="/".join(["d" * 200] * 30) + "/pay.c")

    assert mine_history(tmp_path / "shop", tmp_path / "out", repo_name="acme/shop").cases == 1

    loaded = {change.id: change for change in read_commits(tmp_path / "out" / "commits-acme__shop.jsonl.gz").records}
    assert (loaded[culprit].files, loaded[culprit].n_files) == ((("app.py", 1, 1),), 2)


def test_a_fix_whose_title_is_past_a_case_lines_bounds_is_mined_into_a_case_that_loads(tmp_path: Path) -> None:
    _one_fix(tmp_path / "shop", "pay: retry", fix_title="pay: stop the double charge " + "x" * 20_000)

    assert mine_history(tmp_path / "shop", tmp_path / "out", repo_name="acme/shop").cases == 1

    (case,) = read_cases(tmp_path / "out" / "cases-acme__shop.jsonl.gz").records
    assert case.incident.title.startswith("pay: stop the double charge xxx")
    assert len(case.incident.title) == MAX_TITLE_CHARS


def test_a_fix_whose_window_holds_more_changes_than_a_case_line_may_list_is_skipped_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy repository's merge window lands tens of thousands of changes in two weeks: a case listing them
    all is a line ``ingest history`` refuses, failing the whole load."""
    _one_fix(tmp_path / "shop", "pay: retry")
    monkeypatch.setattr(mining, "MAX_CANDIDATES", 1)

    report = mine_history(tmp_path / "shop", tmp_path / "out", repo_name="acme/shop")

    assert (report.cases, dict(report.skipped)) == (0, {"too_many_candidates": 1})
    assert read_cases(tmp_path / "out" / "cases-acme__shop.jsonl.gz").records == []


def test_a_fix_naming_an_object_whose_git_never_answers_is_refused_naming_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fix names a sha that is no commit of the branch, so mining asks git what it is; that object is a
    pipe nobody writes (as on a hung mount), and the unbounded lookup held ``history mine`` for ever."""
    repo = tmp_path / "shop"
    blob = stalled_change_repo(repo, "pay: start", "pay: retry")
    git_as_ana(repo, "commit", "-q", "--allow-empty", "-m", "pay: stop the double charge", "-m",
               f"The retry charged cards twice.\n\nFixes: {blob[:12]}", when=1_710_000_200)  # fmt: skip
    monkeypatch.setattr(git_log, "GIT_SILENCE_S", 1)

    with pytest.raises(git_log.GitTimedOut, match=rf"^git cat-file in {repo} printed nothing for 1 s"):
        mine_history(repo, tmp_path / "out", repo_name="acme/shop")


def test_a_repository_name_longer_than_a_history_line_holds_is_refused_before_mining(tmp_path: Path) -> None:
    _one_fix(tmp_path / ("shop-" + "x" * 200), "pay: retry")

    with pytest.raises(InputError, match=r"^repository name 'shop-x{20}'\.\.\. is over 200 characters"):
        mine_history(tmp_path / ("shop-" + "x" * 200), tmp_path / "out")
    assert not (tmp_path / "out").exists()
