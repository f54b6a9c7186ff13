"""A responder's repository goes in once; landing times follow the main line."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from structlog.testing import capture_logs

from knowledge.changes import Change
from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.ingest import bounded_pipe, git_log
from knowledge.ingest.git_log import git_text, ingest_git, repository_name
from knowledge.ingest.history_files import MAX_TEXT_CHARS, MAX_TITLE_CHARS
from knowledge.sources.mirrors import stop_fetches
from tests.ingest.synthetic_repo import SyntheticHistory
from tests.ingest.synthetic_repo import commit_object, latin_1_commit, one_commit_repo, stalled_change_repo
from tests.ingest.synthetic_repo import future_dated_repo, headerless_latin_1_commit
from tests.ingest.synthetic_repo import git_as_ana as _git
from tests.waiting import release_fifo, running_processes_naming, wait_until


def _stored(url: str) -> dict[str, Change]:
    with session_scope(url) as session:
        changes = session.scalars(select(Change).options(selectinload(Change.files)))
        return {change.id: change for change in changes}


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_every_non_merge_commit_is_stored_with_its_landing(
    database_url: str, synthetic_history: SyntheticHistory
) -> None:
    report = ingest_git(synthetic_history.path, database_url, repo_name="acme/shop")

    assert (report.new, report.already_present) == (300, 0)
    stored = _stored(database_url)
    assert set(stored) == {change.sha for change in synthetic_history.changes}
    for expected in synthetic_history.changes:
        change = stored[expected.sha]
        assert change.repo == "acme/shop"
        assert change.title == expected.title
        assert change.author_time == _at(expected.author_time)
        assert change.landed_time == _at(expected.landed_time), expected.title
        assert change.landed_via_merge is expected.via_merge
        assert sorted((f.path, f.added, f.deleted) for f in change.files) == expected.files


def test_merged_feature_commits_land_at_the_merge_not_when_written(
    database_url: str, synthetic_history: SyntheticHistory
) -> None:
    ingest_git(synthetic_history.path, database_url)
    part = synthetic_history.by_title("feature 25 part 1")
    change = _stored(database_url)[part.sha]

    assert change.landed_via_merge
    assert change.landed_time == _at(synthetic_history.merge_times[0])
    assert change.author_time < change.landed_time
    assert change.body == f"Why: step {part.mark} of the synthetic history."


def test_binary_files_have_no_line_counts_and_renames_are_a_delete_and_an_add(
    database_url: str, synthetic_history: SyntheticHistory
) -> None:
    ingest_git(synthetic_history.path, database_url)
    stored = _stored(database_url)

    binary = stored[synthetic_history.by_title("change 3 on main").sha]
    assert [(f.path, f.added, f.deleted) for f in binary.files] == [("assets/logo.png", None, None)]
    assert (binary.added, binary.deleted, binary.directories) == (0, 0, ["assets"])
    renamed = stored[synthetic_history.by_title("change 5 on main").sha]
    assert [(f.path, f.added, f.deleted) for f in renamed.files] == [
        ("src/mod4/file4.c", 0, 1),
        ("src/moved/file4.c", 1, 0),
    ]
    assert renamed.directories == ["src/mod4", "src/moved"]


def test_ingesting_twice_adds_nothing(database_url: str, synthetic_history: SyntheticHistory) -> None:
    ingest_git(synthetic_history.path, database_url)
    again = ingest_git(synthetic_history.path, database_url)

    assert (again.new, again.already_present) == (0, 300)
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(Change)) == 300


def test_since_selects_by_landing_time_so_a_late_merge_brings_its_older_commits(
    database_url: str, synthetic_history: SyntheticHistory
) -> None:
    merged_at = synthetic_history.merge_times[0]
    report = ingest_git(synthetic_history.path, database_url, since=_at(merged_at))

    stored = _stored(database_url)
    expected = {c.sha for c in synthetic_history.changes if c.landed_time >= merged_at}
    assert set(stored) == expected and report.new == len(expected)
    assert synthetic_history.by_title("feature 25 part 0").sha in stored
    assert synthetic_history.by_title("change 25 on main").sha not in stored


def test_a_no_ff_merge_made_with_git_itself(database_url: str, tmp_path: Path) -> None:
    repo = tmp_path / "payments"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "trunk")
    (repo / "app.py").write_text("print('v1')\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "Start the app", when=1_710_000_000)
    _git(repo, "checkout", "-q", "-b", "topic")
    (repo / "app.py").write_text("print('v2')\nprint('retry')\n")
    _git(repo, "commit", "-q", "-am", "Retry payments", "-m", "Timeouts were too short.", when=1_710_000_100)
    _git(repo, "checkout", "-q", "trunk")
    (repo / "logo.bin").write_bytes(b"\x00\x01\x02")
    _git(repo, "add", "logo.bin")
    _git(repo, "commit", "-q", "-m", "Add the logo", when=1_710_000_200)
    _git(repo, "merge", "-q", "--no-ff", "topic", "-m", "Merge topic", when=1_710_000_300)
    _git(repo, "mv", "app.py", "main.py")
    _git(repo, "commit", "-q", "-m", "Rename the entry point", when=1_710_000_400)
    _git(repo, "remote", "add", "origin", "git@github.com:acme/payments.git")

    report = ingest_git(repo, database_url)

    assert report.new == 4 and report.source.startswith("acme/payments")
    by_title = {change.title: change for change in _stored(database_url).values()}
    assert "Merge topic" not in by_title
    retry = by_title["Retry payments"]
    assert (retry.landed_time, retry.landed_via_merge) == (_at(1_710_000_300), True)
    assert retry.body == "Timeouts were too short."
    assert [(f.path, f.added, f.deleted) for f in retry.files] == [("app.py", 2, 1)]
    assert [(f.path, f.added, f.deleted) for f in by_title["Add the logo"].files] == [("logo.bin", None, None)]
    assert [(f.path, f.added, f.deleted) for f in by_title["Rename the entry point"].files] == [
        ("app.py", 0, 2),
        ("main.py", 2, 0),
    ]
    assert by_title["Rename the entry point"].landed_via_merge is False
    assert ingest_git(repo, database_url, branch="topic").new == 0


def test_repository_name_from_origin_or_folder(tmp_path: Path) -> None:
    repo = tmp_path / "billing"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    assert repository_name(repo) == "billing"
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", "https://github.com/acme/billing.git"], check=True)
    assert repository_name(repo) == "acme/billing"


@pytest.mark.parametrize(
    ("origin", "name"),
    [
        ("https://ci:s3cret-token@git.example.org/shop.git", "shop"),  # the password became the owner
        ("https://x-access-token:s3cret-token@github.com/acme/shop.git", "acme/shop"),
        ("ssh://git@git.example.org:2222/shop.git", "shop"),
        ("git@git.example.org:shop.git", "shop"),
        ("git@github.com:acme/shop.git", "acme/shop"),
        ("https://s3cret-token@git.example.org/", "billing"),  # no path: the folder's name
    ],
)
def test_a_repository_is_named_by_its_origin_s_path_never_its_credentials(
    tmp_path: Path, origin: str, name: str
) -> None:
    repo = tmp_path / "billing"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", origin], check=True)

    assert repository_name(repo) == name


@pytest.mark.parametrize(
    ("folder", "branch", "refused"),
    [
        ("shop-" + "x" * 200, None, r"repository name 'shop-x{20}'\.\.\. is over 200 characters; give --repo NAME"),
        ("shop", "release/" + "y" * 250, r"branch name 'release/y{17}'\.\.\. is over 255 characters"),
    ],
)
def test_a_repository_or_branch_name_longer_than_the_store_holds_is_refused_before_reading(
    database_url: str, tmp_path: Path, folder: str, branch: str | None, refused: str
) -> None:
    """Named after a long folder (or a long branch given): SQLite stored the name whole past its column's
    size, and PostgreSQL refused the first batch's insert with a database error, not the fix."""
    repo = tmp_path / folder
    one_commit_repo(repo, "Start the app")
    if branch:
        _git(repo, "branch", branch)

    with pytest.raises(InputError, match=refused):
        ingest_git(repo, database_url, branch=branch)
    assert _stored(database_url) == {}


@pytest.mark.parametrize("stall", ["alternates", "config include"])
def test_a_repository_whose_git_never_answers_is_refused_naming_it(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stall: str
) -> None:
    repo = tmp_path / "shop"
    one_commit_repo(repo, "Add the checkout")
    if stall == "alternates":  # git waits for ever to open a pipe nobody writes, as on a hung mount
        os.mkfifo(repo / ".git" / "objects" / "info" / "alternates")
    else:
        os.mkfifo(tmp_path / "included")
        _git(repo, "config", "include.path", str(tmp_path / "included"))
    monkeypatch.setattr(git_log, "GIT_TIMEOUT_S", 1)

    with pytest.raises(InputError) as refused:
        ingest_git(repo, database_url)

    assert str(refused.value).startswith(f"git rev-parse in {repo} took over 1 s (GIT_TIMEOUT_S)")
    if stall == "config include":  # every git command reads the config, the one naming the repository too
        with pytest.raises(InputError, match=r"^git config in .*/shop took over 1 s"):
            repository_name(repo)


@pytest.mark.parametrize("make", ["missing", "plain folder", "file", "empty repository"])
def test_a_path_that_is_not_a_repository_is_refused(tmp_path: Path, make: str) -> None:
    target = tmp_path / "target"
    if make == "plain folder":
        target.mkdir()
    elif make == "file":
        target.write_text("not a repo")
    elif make == "empty repository":
        subprocess.run(["git", "init", "-q", str(target)], check=True)
    with pytest.raises(InputError, match="target"):
        ingest_git(target, f"sqlite:///{tmp_path / 'unused.db'}")


def test_an_unknown_branch_is_refused(synthetic_history: SyntheticHistory, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'release' not found"):
        ingest_git(synthetic_history.path, f"sqlite:///{tmp_path / 'unused.db'}", branch="release")


def test_an_author_whose_name_holds_a_unit_separator_is_stored_as_git_has_it(database_url: str, tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    one_commit_repo(repo, "Start the app")
    (repo / "app.py").write_text("print('v2')\n")
    stamp = "1710000100 +0000"
    author = {"GIT_AUTHOR_NAME": "Ana\x1fBob", "GIT_AUTHOR_EMAIL": "ana\x1f@example.org", "GIT_AUTHOR_DATE": stamp,
              "GIT_COMMITTER_NAME": "Ana", "GIT_COMMITTER_EMAIL": "ana@example.org", "GIT_COMMITTER_DATE": stamp}  # fmt: skip
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-am", "Print v2\n\nWhy:\x1f a separator here too."],
                   env={**os.environ, **author}, check=True)  # fmt: skip
    sha = _git(repo, "rev-parse", "HEAD").strip()

    report = ingest_git(repo, database_url)

    assert (report.new, report.bad_lines) == (2, [])
    change = _stored(database_url)[sha]
    assert (change.author, change.email, change.author_time) == ("Ana\x1fBob", "ana\x1f@example.org", _at(1_710_000_100))
    assert (change.title, change.body) == ("Print v2", "Why:\x1f a separator here too.")


def test_a_clone_whose_config_writes_latin_1_still_stores_names_and_titles_as_written(
    database_url: str, tmp_path: Path
) -> None:
    """A team's clone with ``i18n.commitEncoding = ISO-8859-1`` (its commits say so in their header):
    git would print its log in that encoding, and the names and titles were stored as U+FFFD."""
    repo = tmp_path / "shop"
    one_commit_repo(repo, "Start the app")
    latin_1_commit(repo, "José Müller", "Corrige l'arrondi à l'euro")

    ingest_git(repo, database_url, repo_name="acme/shop")

    [change] = [change for change in _stored(database_url).values() if change.author != "Ana"]
    assert (change.author, change.title) == ("José Müller", "Corrige l'arrondi à l'euro")


def test_latin_1_bytes_under_no_encoding_header_are_stored_as_written(database_url: str, tmp_path: Path) -> None:
    """Old histories hold Latin-1 names, messages and paths with no ``encoding`` header: git prints their bytes
    as they are, and read as UTF-8 they were stored as 'Jos\ufffd M\ufffdller'."""
    repo = tmp_path / "shop"
    one_commit_repo(repo, "Start the app")
    sha = headerless_latin_1_commit(repo, "José Müller", "Corrige l'arrondi à l'euro\n\nPayé en francs.", "café.py")

    ingest_git(repo, database_url, repo_name="acme/shop")

    change = _stored(database_url)[sha]
    assert (change.author, change.title, change.body) == ("José Müller", "Corrige l'arrondi à l'euro", "Payé en francs.")
    assert [file.path for file in change.files] == ["café.py"]


def test_a_field_cut_inside_a_utf_8_character_is_not_taken_for_latin_1() -> None:
    """A name or message is read only up to its byte bound, which may fall inside a character."""
    assert git_text("Müller".encode()[:2], bound=2) == "M"
    assert git_text(b"Jos\xe9") == "José"  # the same last byte, whole: Latin-1
    assert git_text(b"\x81 \xe9t\xe9") == "\x81 été"  # a byte cp1252 leaves undefined: Latin-1


def test_a_commit_dated_outside_1970_to_9999_is_refused_with_its_reason(database_url: str, tmp_path: Path) -> None:
    repo = tmp_path / "clock"
    tip = one_commit_repo(repo, "Start the app")
    odd = {}
    for title, author, committer in [("written in year 11476", "300000000000", "1710000100"),
                                     ("landed in year 11476", "1710000200", "300000000000"),
                                     ("written at no time", "soon", "1710000300"),
                                     ("landed before 1970", "1710000400", "-5")]:  # fmt: skip
        tip = odd[title] = commit_object(repo, tip, title, author, committer)
    tip = commit_object(repo, tip, "back to normal", "1710000500", "1710000500")
    _git(repo, "update-ref", "refs/heads/main", tip)

    report = ingest_git(repo, database_url)

    assert report.new == 2 and {c.title for c in _stored(database_url).values()} == {"Start the app", "back to normal"}
    reasons = {line.split(":")[0].removeprefix("commit "): line for line in report.bad_lines}
    assert set(reasons) == set(odd.values())
    assert "author date 300000000000 is not a time from 1970 to 9999" in reasons[odd["written in year 11476"]]
    assert "commit date 300000000000 is not a time from 1970 to 9999" in reasons[odd["landed in year 11476"]]
    assert "author date (none) is not a time" in reasons[odd["written at no time"]]
    assert "commit date 18446744073709551611 is not a time" in reasons[odd["landed before 1970"]]


def test_a_commit_dated_in_the_future_lands_when_read_and_is_named_with_its_reason(
    database_url: str, tmp_path: Path
) -> None:
    """Stored at its 2099 commit date, a commit fell into every incident's window and ranked as a suspect for ever;
    left out, it was lost for good (the remembered tip moves past it). Such a commit (and one its 2099 merge
    brought) lands when culprit read it instead, named by sha with its reason in the report and the log (no
    author's email)."""
    shas = future_dated_repo(tmp_path / "shop")
    before = datetime.now(UTC).replace(microsecond=0)

    with capture_logs() as logs:
        report = ingest_git(tmp_path / "shop", database_url, repo_name="acme/shop")

    stored = _stored(database_url)
    assert {change.title for change in stored.values()} == {"Start the app", "Wrong clock", "Side fix", "Right clock"}
    assert stored[shas["Right clock"]].landed_time == _at(1_710_000_300)
    after = datetime.now(UTC)
    assert all(before <= stored[shas[title]].landed_time <= after for title in ("Wrong clock", "Side fix"))
    assert report.bad_lines == []
    read_at = f"{stored[shas['Wrong clock']].landed_time:%Y-%m-%dT%H:%M:%SZ}"
    future = "commit date 2099-01-01T00:00:00Z is in the future (more than 5 minutes ahead of culprit's clock)"
    assert sorted(report.landed_when_read) == sorted([
        f"commit {shas['Wrong clock']}: {future}; stored as landing when culprit read it, {read_at}",
        f"commit {shas['Side fix']}: brought in by merge {shas['Merge side']}, whose {future}; "
        f"stored as landing when culprit read it, {read_at}",
    ])
    noted = [(log["change"], log["reason"]) for log in logs if log["event"] == "commit dated in the future"]
    assert sorted(noted) == sorted(tuple(line.removeprefix("commit ").split(": ", 1)) for line in report.landed_when_read)
    assert "ana@example.org" not in repr(logs)


def test_a_history_whose_git_log_falls_silent_is_refused_naming_the_repository(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rev-parse and rev-list answer, but the patch of the new commit needs a blob that is a pipe nobody writes
    (as on a hung mount): ``git log`` prints nothing more and, unbounded, held the ingestion and the poller for ever."""
    repo = tmp_path / "shop"
    stalled_change_repo(repo, "Start the app", "Print v2")
    monkeypatch.setattr(git_log, "GIT_SILENCE_S", 1)

    with pytest.raises(git_log.GitTimedOut) as refused:
        ingest_git(repo, database_url)

    assert str(refused.value).startswith(f"git log in {repo} printed nothing for 1 s (GIT_SILENCE_S)")
    assert _stored(database_url) == {}


def test_stopping_the_polls_at_shutdown_kills_a_git_log_stuck_on_a_hung_mount(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``culprit serve`` killed its fetches as it exited, but not the ``git log`` a poll runs next to ingest the
    mirror: stuck opening a blob on a hung mount (a pipe nobody writes), it outlived the bot, orphaned."""
    repo = tmp_path / "shop"
    blob = stalled_change_repo(repo, "Start the app", "Print v2")
    monkeypatch.setattr(bounded_pipe, "_stopping", threading.Event())  # stop_fetches refuses git for the process's life

    failures = _stopped_while_stuck(lambda: ingest_git(repo, database_url), f"{repo} log",
                                    repo / ".git" / "objects" / blob[:2] / blob[2:])  # fmt: skip

    assert failures == [f"git log in {repo} stopped: culprit is shutting down"]
    assert _stored(database_url) == {}
    with pytest.raises(InputError, match=r"^git rev-parse in .* not started: culprit is shutting down$"):
        ingest_git(repo, database_url)


def test_stopping_at_shutdown_kills_a_short_git_stuck_on_a_hung_mount_and_refuses_new_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The short git commands (config, rev-parse) ran with ``subprocess.run``, unknown to ``stop_fetches``: one
    reading a config include on a hung mount (a pipe nobody writes) outlived ``culprit serve`` for its whole
    GIT_TIMEOUT_S, and new ones still started after the stop."""
    repo = tmp_path / "shop"
    one_commit_repo(repo, "Start the app")
    hung = tmp_path / "hung-include"
    os.mkfifo(hung)
    with (repo / ".git" / "config").open("a") as config:
        config.write(f"[include]\n\tpath = {hung}\n")
    monkeypatch.setattr(bounded_pipe, "_stopping", threading.Event())  # stop_fetches refuses git for the process's life

    failures = _stopped_while_stuck(lambda: repository_name(repo), f"{repo} config", hung)

    assert failures == [f"git config in {repo} stopped: culprit is shutting down"]
    with pytest.raises(InputError, match=r"^git config in .* not started: culprit is shutting down$"):
        repository_name(repo)


def _stopped_while_stuck(work: Callable[[], object], command: str, fifo: Path) -> list[str]:
    """Run ``work`` in a thread until its git (whose command line holds ``command``) is running, stuck on
    ``fifo``; call ``stop_fetches`` as ``culprit serve`` does on exit, and wait for that git to be gone.
    The InputErrors ``work`` raised."""
    failures: list[str] = []

    def run() -> None:
        try:
            work()
        except InputError as error:
            failures.append(str(error))

    working = threading.Thread(target=run, daemon=True)
    working.start()
    try:
        stuck = wait_until(lambda: running_processes_naming(command), f"{command} never started")

        stop_fetches()

        wait_until(lambda: not running_processes_naming(command), f"still running: {stuck}")
        working.join()
    finally:
        release_fifo(fifo)
    return failures


def test_a_git_that_ends_its_output_but_never_exits_is_killed_and_refused_naming_the_repository(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git rev-list prints the whole graph and closes its output, then never exits (stuck writing on a hung
    mount): waiting for its status without a bound held the ingestion and the poller for ever."""
    repo = tmp_path / "shop"
    one_commit_repo(repo, "Start the app")
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\n{_real_git()} "$@" || exit\n[ "$3" = rev-list ] || exit 0\n'
                       f'exec >&-\necho "$$" > {tmp_path / "hung"}\nexec sleep 3600\n')  # fmt: skip
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(git_log, "GIT_SILENCE_S", 1)

    with pytest.raises(git_log.GitTimedOut) as refused:
        ingest_git(repo, database_url)

    assert str(refused.value).startswith(f"git rev-list in {repo} ended its output but did not exit within 1 s")
    hung = int((tmp_path / "hung").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(hung, 0)  # killed and reaped, not left behind


def _real_git() -> str:
    found = shutil.which("git")
    assert found is not None
    return found


def test_a_commit_message_of_many_megabytes_is_read_keeping_only_its_stored_part(tmp_path: Path) -> None:
    """The whole message was held while the commit was read (a 200 MB one took about 1 GB) though only its
    first MAX_TITLE_CHARS of title and MAX_TEXT_CHARS of body are stored: the rest now streams past."""
    repo = tmp_path / "shop"
    one_commit_repo(repo, "Start the app")
    (repo / "app.py").write_text("print('v2')\n")
    body = "Le débit a échoué deux fois.\n" * 600_000
    (tmp_path / "message").write_text(f"Print v2\n\n{body}")
    _git(repo, "commit", "-q", "-a", "-F", str(tmp_path / "message"), when=1_710_000_100)
    sha = _git(repo, "rev-parse", "HEAD").strip()
    mainline = git_log.read_mainline(repo, sha)

    tracemalloc.start()
    try:
        (change,) = git_log.read_changes(repo, [sha], "acme/shop", mainline)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert (change.title, change.body, change.files) == ("Print v2", body[:MAX_TEXT_CHARS], (("app.py", 1, 1),))
    assert len(body.encode()) > 16_000_000 and peak < 8_000_000


def test_line_counts_past_the_stores_integers_are_kept_at_the_largest_one() -> None:
    """git counts the lines of a generated file of billions of lines as it is: stored as they came, one such
    count failed PostgreSQL's integer columns, and with it the whole batch of changes."""
    largest = 2**31 - 1
    files = git_log._Files()
    files.add("data/huge.csv", 3_000_000_000, 5)
    files.add("data/other.csv", largest, largest)
    files.add("logo.png", None, None)
    landed = git_log.Landing(datetime(2024, 3, 9, tzinfo=UTC), via_merge=False)
    mainline = git_log.Mainline({"a" * 40: landed}, set())

    change = git_log._record(["a" * 40, "Ana", "ana@example.org", "1710000000", "Load the data\n"],
                             landed.time, files, b"", "acme/shop", mainline)  # fmt: skip

    assert change.files == (
        ("data/huge.csv", largest, 5), ("data/other.csv", largest, largest), ("logo.png", None, None)
    )  # fmt: skip
    assert (change.added, change.deleted, change.n_files) == (largest, largest, 3)


def test_a_commit_touching_more_files_than_the_cap_keeps_the_first_ones_and_counts_them_all(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vendored tree or a mass rename touches any number of files: like a webhook's or a history file's,
    its stored list stops at the cap, while its size says how many it really touched."""
    repo = tmp_path / "shop"
    one_commit_repo(repo, "Start the app")
    for number in range(5):
        (repo / ("lib" if number < 3 else "vendor")).mkdir(exist_ok=True)
        (repo / ("lib" if number < 3 else "vendor") / f"f{number}.c").write_text("int x;\n" * (number + 1))
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "Vendor the parser", when=1_710_000_100)
    sha = _git(repo, "rev-parse", "HEAD").strip()
    monkeypatch.setattr(git_log, "MAX_FILES", 3)

    with capture_logs() as logs:
        report = ingest_git(repo, database_url, repo_name="acme/shop")

    assert report.new == 2
    change = _stored(database_url)[sha]
    assert [(f.path, f.added, f.deleted) for f in change.files] == [("lib/f0.c", 1, 0), ("lib/f1.c", 2, 0),
                                                                    ("lib/f2.c", 3, 0)]  # fmt: skip
    assert (change.n_files, change.added, change.deleted, change.directories) == (5, 15, 0, ["lib"])
    cut = [log for log in logs if log["event"] == "change file list cut"]
    assert cut == [{"event": "change file list cut", "log_level": "warning", "repo": "acme/shop", "change": sha,
                    "files": 5, "kept": 3}]  # fmt: skip


def test_a_commit_message_past_a_history_files_bounds_is_stored_cut_to_them(database_url: str, tmp_path: Path) -> None:
    """A generated or hostile message of megabytes: stored whole, it became every answer's and mined file's
    problem (``ingest history`` refuses a line past these bounds); its first part says what the change is."""
    repo = tmp_path / "shop"
    one_commit_repo(repo, "Start the app")
    (repo / "app.py").write_text("print('v2')\n")
    title, body = "Bump " + "x" * (MAX_TITLE_CHARS + 100), "Why: " + "y" * (MAX_TEXT_CHARS + 100)
    _git(repo, "commit", "-q", "-am", title, "-m", body, when=1_710_000_100)
    sha = _git(repo, "rev-parse", "HEAD").strip()

    assert ingest_git(repo, database_url).new == 2

    change = _stored(database_url)[sha]
    assert (len(change.title), len(change.body)) == (MAX_TITLE_CHARS, MAX_TEXT_CHARS)
    assert title.startswith(change.title) and body.startswith(change.body)


def test_a_title_after_megabytes_of_blank_lines_is_still_the_title(tmp_path: Path) -> None:
    """Only the message's first bytes are read; megabytes of blank lines before its title (kept as written by
    ``--cleanup=verbatim``) filled them, and the commit was stored with an empty title and body."""
    repo = tmp_path / "shop"
    one_commit_repo(repo, "Start the app")
    (repo / "app.py").write_text("print('v2')\n")
    blank = " \t\r\n" * 1_500_000 + "\n" * 1_000_000
    (tmp_path / "message").write_text(f"{blank}  Print v2\nfor the café\n\nBecause it was v1.\n")
    _git(repo, "commit", "-q", "-a", "--cleanup=verbatim", "-F", str(tmp_path / "message"), when=1_710_000_100)
    sha = _git(repo, "rev-parse", "HEAD").strip()

    (change,) = git_log.read_changes(repo, [sha], "acme/shop", git_log.read_mainline(repo, sha))

    assert len(blank) > 4 * (2 * MAX_TITLE_CHARS + MAX_TEXT_CHARS)  # past all that is read of a message
    assert (change.title, change.body) == ("Print v2 for the café", "Because it was v1.")  # as git log's %s, %b
    assert _git(repo, "log", "-1", "--format=%s", sha).strip() == change.title
