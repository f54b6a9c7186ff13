"""A team upgrades past migration 0010: `culprit ingest names` reads the names of the history it already stored."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, text, update

from knowledge.changes import Change, ChangeRecord
from knowledge.config import TrackedRepo, get_settings
from knowledge.db import get_engine, migrate, session_scope
from knowledge.ingest.change_store import store_changes
from knowledge.ingest.git_log import commits_present, ingest_git
from knowledge.ingest.history import ingest_commits
from knowledge.ingest.names_backfill import NO_MIRROR, NOT_A_COMMIT_ID, NOT_TRACKED, backfill_names, backfill_tracked
from knowledge.ingest.progress import Silent
from knowledge.sources.mirrors import fetch_mirror
from tests.ingest.synthetic_repo import git_as_ana
from tests.ingest.test_cli import _culprit
from tests.ingest.test_patch_names import _commit, _http_repo, _stored
from tests.schema_revisions import downgrade_to
from tests.waiting import wait_until
from tools.rca.embeddings import DIMENSIONS, ChangeEmbeddings

NAMES = {
    "http: first version": ((), ("http_send_chunk", "size_t", "conn_write", "http_done", "conn_close")),
    "http: write whole buffers": (("http_send_chunk",), ("conn_write_all", "conn_write")),
    "http: clear the timer when done": (("http_done",), ("expire_clear",)),
}


def as_before_the_upgrade(url: str) -> None:
    """The store as a team that ran 0009 has it, upgraded in place: every stored change goes
    back to before migration 0010 (its columns dropped) and through 0010 again."""
    downgrade_to(url, "0009")
    migrate(url)
    get_engine(url).dispose()  # no pooled connection keeps statements prepared against the old columns


def _raw_names(url: str) -> dict[str, tuple[list[str] | None, list[str] | None]]:
    """Title -> the columns as stored, so NULL ("never read") and [] ("read, none") stay apart."""
    with session_scope(url) as session:
        return {title: (functions, identifiers) for title, functions, identifiers
                in session.execute(select(Change.title, Change.functions, Change.identifiers))}  # fmt: skip


def _upgraded_store(url: str, tmp_path: Path) -> Path:
    repo = _http_repo(tmp_path)
    ingest_git(repo, url, repo_name="acme/shop")
    as_before_the_upgrade(url)
    return repo


def test_the_history_stored_before_the_upgrade_gets_its_names_once(database_url: str, tmp_path: Path) -> None:
    repo = _upgraded_store(database_url, tmp_path)
    assert all(stored == (None, None) for stored in _raw_names(database_url).values())

    report = backfill_names(repo, database_url, "acme/shop", batch_size=2)

    assert (report.unknown, report.filled, report.gone, report.skipped) == (3, 3, 0, {})
    assert _stored(database_url) == NAMES
    # Read and found none is an empty list, not "unknown": the next run leaves it alone.
    assert _raw_names(database_url)["http: first version"][0] == []
    again = backfill_names(repo, database_url, "acme/shop")
    assert (again.unknown, again.filled, again.gone) == (0, 0, 0)
    assert _stored(database_url) == NAMES


def test_history_files_written_before_names_existed_are_stored_unknown_and_filled_from_a_clone(
    database_url: str, tmp_path: Path
) -> None:
    """``shared/data/rca``'s files have no ``functions`` or ``identifiers``: "never read", not "read, none"."""
    repo = _http_repo(tmp_path)
    commits = tmp_path / "commits-acme__shop.jsonl"
    lines = []
    for sha, title in (line.split(" ", 1) for line in git_as_ana(repo, "log", "--format=%H %s").splitlines()):
        lines.append({"repo": "acme/shop", "sha": sha, "title": title, "author_time": 1710000000,
                      "landed_time": 1710000000} | ({"functions": [], "identifiers": []}
                                                    if title == "http: first version" else {}))  # fmt: skip
    commits.write_text("".join(json.dumps(line) + "\n" for line in lines))

    ingest_commits(commits, database_url)
    stored = _raw_names(database_url)
    report = backfill_names(repo, database_url, "acme/shop")

    assert stored == {"http: first version": ([], []), "http: write whole buffers": (None, None),
                      "http: clear the timer when done": (None, None)}  # fmt: skip
    assert (report.unknown, report.filled) == (2, 2)
    assert {title: names for title, names in _stored(database_url).items() if title != "http: first version"} == {
        title: names for title, names in NAMES.items() if title != "http: first version"}  # fmt: skip


def test_a_commit_the_repository_lost_stays_unknown_and_is_counted_each_run(
    database_url: str, tmp_path: Path
) -> None:
    repo = _http_repo(tmp_path)
    _commit(repo, "http: a change force-pushed away", {"lib/http.c": "int gone_fn(void);\n"}, when=1_710_009_000)
    ingest_git(repo, database_url, repo_name="acme/shop")
    lost = git_as_ana(repo, "rev-parse", "HEAD").strip()
    git_as_ana(repo, "reset", "-q", "--hard", "HEAD~1")
    git_as_ana(repo, "reflog", "expire", "--expire=now", "--all")
    git_as_ana(repo, "gc", "-q", "--prune=now")
    assert commits_present(repo, [lost]) == set()
    as_before_the_upgrade(database_url)

    first = backfill_names(repo, database_url, "acme/shop")
    second = backfill_names(repo, database_url, "acme/shop")

    assert [(first.filled, first.gone), (second.filled, second.gone)] == [(3, 1), (0, 1)]

    assert _raw_names(database_url)["http: a change force-pushed away"] == (None, None)
    assert {title: names for title, names in _stored(database_url).items() if title in NAMES} == NAMES


def test_stored_ids_that_are_not_commit_ids_never_reach_git(database_url: str, tmp_path: Path) -> None:
    """A hostile or foreign id (``HEAD~1``, an option, a short sha) would be a revision expression to git."""
    repo = _upgraded_store(database_url, tmp_path)
    when = datetime(2024, 3, 9, tzinfo=UTC)
    hostile = ["HEAD~1", "--output=/tmp/owned", "deadbeef", "a" * 39 + "G"]
    records = [ChangeRecord(id=change_id, repo="acme/shop", title=f"odd {n}", author_time=when, landed_time=when)
               for n, change_id in enumerate(hostile)]  # fmt: skip
    store_changes(database_url, records, Silent())
    as_before_the_upgrade(database_url)

    report = backfill_names(repo, database_url, "acme/shop")

    assert (report.filled, report.gone, report.skipped) == (3, 0, {NOT_A_COMMIT_ID: 4})
    assert all(_raw_names(database_url)[f"odd {n}"] == (None, None) for n in range(4))
    with pytest.raises(ValueError, match="not a full commit id"):
        commits_present(repo, ["HEAD~1"])


def _waiting_on_a_row_lock(url: str) -> bool:
    with get_engine(url).connect() as watcher:  # a connection of its own: a transaction sees one snapshot of it
        return watcher.execute(text(
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE changes%'"
        )).first() is not None  # fmt: skip


@pytest.mark.postgres
def test_filled_counts_only_the_changes_this_run_wrote(postgres_url: str, tmp_path: Path) -> None:
    """Another writer fills a change while this run reads git: it is not this run's, so not counted."""
    migrate(postgres_url)
    repo = _upgraded_store(postgres_url, tmp_path)
    with session_scope(postgres_url) as session:
        first = session.scalars(select(Change.id).where(Change.title == "http: first version")).one()
    with get_engine(postgres_url).connect() as other, ThreadPoolExecutor(1) as pool:
        other.execute(update(Change).where(Change.id == first).values(functions=["by_another_run"], identifiers=[]))
        running = pool.submit(backfill_names, repo, postgres_url, "acme/shop")  # sees the row unknown, then waits
        try:
            wait_until(lambda: _waiting_on_a_row_lock(postgres_url), "the backfill never waited on the row")
        finally:
            other.commit()
        report = running.result()

    assert (report.unknown, report.filled) == (3, 2)
    assert _raw_names(postgres_url)["http: first version"] == (["by_another_run"], [])  # not written over


class _Interrupt(Silent):
    """Ctrl-C after the first batch is stored."""

    def advance(self, amount: int = 1) -> None:
        raise KeyboardInterrupt


def test_an_interrupted_run_keeps_its_batches_and_the_next_reads_only_the_rest(
    database_url: str, tmp_path: Path
) -> None:
    repo = _upgraded_store(database_url, tmp_path)

    with pytest.raises(KeyboardInterrupt):
        backfill_names(repo, database_url, "acme/shop", progress=_Interrupt(), batch_size=2)
    assert sum(functions is not None for functions, _ in _raw_names(database_url).values()) == 2

    report = backfill_names(repo, database_url, "acme/shop")
    assert (report.unknown, report.filled) == (1, 1)
    assert _stored(database_url) == NAMES


def test_tracked_repositories_fill_from_their_mirrors_and_the_others_say_how(
    database_url: str, tmp_path: Path
) -> None:
    shop = TrackedRepo(name="acme/shop", path=_upgraded_store(database_url, tmp_path))
    mirrors_dir = tmp_path / "mirrors"
    mirror = fetch_mirror(shop, mirrors_dir)
    when = datetime(2024, 3, 9, tzinfo=UTC)
    other = [ChangeRecord(id=digit * 40, repo=name, title=name, author_time=when, landed_time=when)
             for digit, name in (("b", "acme/web"), ("c", "acme/api"))]  # fmt: skip
    store_changes(database_url, other, Silent())
    as_before_the_upgrade(database_url)

    reports = backfill_tracked(database_url, {"acme/shop": mirror, "acme/web": mirrors_dir / "acme__web.git"})

    by_repo = {report.repo: report for report in reports}
    assert (by_repo["acme/shop"].filled, by_repo["acme/shop"].source) == (3, str(mirror.resolve()))
    assert by_repo["acme/web"].skipped == {NO_MIRROR: 1}
    assert by_repo["acme/api"].skipped == {NOT_TRACKED.format(repo="acme/api"): 1}
    assert [report.repo for report in backfill_tracked(database_url, {}, repo="acme/shop")] == []


def test_the_command_fills_tracked_mirrors_and_drops_the_embeddings_whose_text_changed(
    database_url: str, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    repo = _upgraded_store(database_url, tmp_path)
    shop = TrackedRepo(name="acme/shop", path=repo)
    fetch_mirror(shop, data_dir / "mirrors")
    monkeypatch.setenv("CULPRIT_REPOS", json.dumps([{"name": "acme/shop", "path": str(repo)}]))
    get_settings.cache_clear()
    with session_scope(database_url) as session:
        changes = [change.record() for change in session.scalars(select(Change))]
    vectors = ChangeEmbeddings(data_dir / "embeddings", embedder=lambda texts: np.ones((len(texts), DIMENSIONS)))
    vectors.add(changes)

    code, out, _err = _culprit(["ingest", "names", "--json"], monkeypatch, capsys)

    assert code == 0
    shown = json.loads(out)
    assert [(r["repo"], r["unknown"], r["filled"], r["gone"]) for r in shown["repositories"]] == [("acme/shop", 3, 3, 0)]
    assert shown["embeddings_dropped"] == 2
    kept = ChangeEmbeddings(data_dir / "embeddings")
    assert {change.title for change in changes if change.id in kept} == {"http: first version"}
    assert _stored(database_url) == NAMES
    code, out, _err = _culprit(["ingest", "names"], monkeypatch, capsys)
    assert (code, out.strip()) == (0, "names: no stored change of any repository lacks its names")
