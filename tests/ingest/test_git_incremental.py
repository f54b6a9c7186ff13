"""A scheduler polls a repository: each run reads only what landed since the last one,
and a force-push makes it read everything again without storing anything twice."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from knowledge.changes import Change
from knowledge.db import migrate, session_scope
from knowledge.ingest.git_log import ingest_git
from tests.ingest.synthetic_repo import SyntheticHistory, write_history
from tests.ingest.synthetic_repo import git_as_ana as _git

N_COMMITS = 40
MERGES = 1  # write_history merges a feature branch every 25 main-line commits


@pytest.fixture
def repo(tmp_path: Path) -> SyntheticHistory:
    """A repository of its own, checked out on ``main``, that the test may move."""
    history = write_history(tmp_path / "shop", n_commits=N_COMMITS)
    subprocess.run(["git", "-C", str(history.path), "checkout", "-q", "main"], check=True)
    return history


def _commit(repo: Path, file: str, title: str, when: int) -> str:
    (repo / file).parent.mkdir(parents=True, exist_ok=True)
    (repo / file).write_text(f"{title}\n")
    _git(repo, "add", file, when=when)
    _git(repo, "commit", "-q", "-m", title, when=when)
    return _git(repo, "rev-parse", "HEAD", when=when).strip()


def _stored(url: str) -> dict[str, tuple[object, ...]]:
    """Every stored change as the columns ingestion sets, to compare two stores."""
    with session_scope(url) as session:
        changes = session.scalars(select(Change).options(selectinload(Change.files)))
        return {
            change.id: (change.title, change.landed_time, change.landed_via_merge,
                        sorted((f.path, f.added, f.deleted) for f in change.files))
            for change in changes
        }  # fmt: skip


def _read_from_scratch(repo: Path, tmp_path: Path) -> dict[str, tuple[object, ...]]:
    """What a first ingest of the repository as it is now stores, in a database of its own."""
    url = f"sqlite:///{tmp_path / 'from-scratch.db'}"
    migrate(url)
    ingest_git(repo, url, repo_name="acme/shop")
    return _stored(url)


def test_a_run_with_nothing_new_reads_and_stores_nothing(database_url: str, repo: SyntheticHistory) -> None:
    first = ingest_git(repo.path, database_url, repo_name="acme/shop")
    again = ingest_git(repo.path, database_url, repo_name="acme/shop")

    assert (first.full_read, first.commits_read, first.new) == (True, N_COMMITS + MERGES, N_COMMITS)
    assert (again.full_read, again.commits_read, again.new, again.already_present) == (False, 0, 0, N_COMMITS)
    assert len(_stored(database_url)) == N_COMMITS


def test_new_commits_and_a_merge_are_read_alone_and_land_as_a_full_read_would_say(
    database_url: str, repo: SyntheticHistory, tmp_path: Path
) -> None:
    ingest_git(repo.path, database_url, repo_name="acme/shop")
    hotfix = _commit(repo.path, "src/pay.c", "Fix the payment timeout", when=1_720_000_000)
    _git(repo.path, "checkout", "-q", "-b", "topic", when=1_720_000_100)
    topic = _commit(repo.path, "src/retry.c", "Retry payments", when=1_720_000_200)
    _git(repo.path, "checkout", "-q", "main", when=1_720_000_300)
    _commit(repo.path, "docs/pay.md", "Document payments", when=1_720_000_400)
    _git(repo.path, "merge", "-q", "--no-ff", "topic", "-m", "Merge topic", when=1_720_000_500)

    report = ingest_git(repo.path, database_url, repo_name="acme/shop")

    assert (report.full_read, report.commits_read, report.new, report.already_present) == (False, 4, 3, N_COMMITS)
    stored = _stored(database_url)
    assert stored[hotfix][1:3] == (datetime.fromtimestamp(1_720_000_000, UTC), False)
    assert stored[topic][1:3] == (datetime.fromtimestamp(1_720_000_500, UTC), True)
    assert stored == _read_from_scratch(repo.path, tmp_path)


def test_a_force_push_reads_the_whole_history_again_and_stays_correct(
    database_url: str, repo: SyntheticHistory, tmp_path: Path
) -> None:
    ingest_git(repo.path, database_url, repo_name="acme/shop")
    dropped = _commit(repo.path, "src/bad.c", "A change that gets rewritten", when=1_720_000_000)
    ingest_git(repo.path, database_url, repo_name="acme/shop")
    _git(repo.path, "reset", "-q", "--hard", "HEAD~1", when=1_720_000_100)
    rewritten = _commit(repo.path, "src/good.c", "The change as pushed again", when=1_720_000_200)

    report = ingest_git(repo.path, database_url, repo_name="acme/shop")

    assert (report.full_read, report.commits_read, report.new, report.already_present) == (
        True, N_COMMITS + MERGES + 1, 1, N_COMMITS,
    )  # fmt: skip
    stored = _stored(database_url)
    assert rewritten in stored and dropped in stored  # a change that once landed stays on record
    assert {sha: stored[sha] for sha in stored if sha != dropped} == _read_from_scratch(repo.path, tmp_path)
    idle = ingest_git(repo.path, database_url, repo_name="acme/shop")
    assert (idle.full_read, idle.commits_read, idle.already_present) == (False, 0, N_COMMITS + 1)


def test_an_earlier_since_reads_everything_again_to_fetch_the_older_changes(
    database_url: str, repo: SyntheticHistory
) -> None:
    merged_at = datetime.fromtimestamp(repo.merge_times[0], UTC)
    recent = ingest_git(repo.path, database_url, since=merged_at)
    everything = ingest_git(repo.path, database_url)

    older = sum(1 for change in repo.changes if change.landed_time < repo.merge_times[0])
    assert everything.full_read and (everything.new, everything.already_present) == (older, recent.new)
    assert len(_stored(database_url)) == N_COMMITS


def test_branches_are_remembered_apart(database_url: str, repo: SyntheticHistory) -> None:
    ingest_git(repo.path, database_url, branch="main", repo_name="acme/shop")
    _git(repo.path, "checkout", "-q", "-b", "release", "HEAD~3", when=1_720_000_000)
    _commit(repo.path, "src/release.c", "Release fix", when=1_720_000_100)

    release = ingest_git(repo.path, database_url, branch="release", repo_name="acme/shop")
    main = ingest_git(repo.path, database_url, branch="main", repo_name="acme/shop")

    assert (release.full_read, release.new, release.already_present) == (True, 1, N_COMMITS - 3)
    assert (main.full_read, main.commits_read, main.already_present) == (False, 0, N_COMMITS)
