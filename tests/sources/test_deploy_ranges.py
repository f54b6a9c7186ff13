"""A deploy's commit range is read from the tracked repository's mirror, bounded: a huge range keeps its
oldest commits without git printing the rest, and a mirror whose git stalls falls back to landing times."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from knowledge.changes import Change
from knowledge.config import TrackedRepo
from knowledge.db import get_engine, session_scope, utcnow
from knowledge.ingest import bounded_pipe
from knowledge.sources import events
from knowledge.sources.events import check_events, store_events
from knowledge.sources.mirrors import mirror_path, stop_fetches
from knowledge.sources.polling import poll_repository
from tests.sources.upstream import Upstream
from tests.waiting import release_fifo, running_processes_naming, wait_until


def _mirrored(tmp_path: Path, database_url: str, commits: int) -> tuple[Upstream, Path]:
    upstream = Upstream.create(tmp_path / "shop")
    start = int(utcnow().timestamp()) - 3600
    for n in range(commits):
        upstream.commit(f"src/m{n}.py", f"change {n}", when=start + 60 * n)
    repo = TrackedRepo(**upstream.tracked())
    poll_repository(repo, tmp_path / "mirrors", database_url, 60)
    return upstream, mirror_path(tmp_path / "mirrors", repo)


def _deploy_carried(upstream: Upstream, mirror: Path, database_url: str) -> list[str]:
    deploy: dict[str, Any] = {"id": "deploy-7", "kind": "deploy", "service": "shop", "repo": upstream.name,
                              "commit_range": f"{upstream.shas[0]}..{upstream.shas[-1]}", "time": utcnow().isoformat()}  # fmt: skip
    batch = check_events([deploy])
    assert batch.rejected == []
    assert store_events(batch, database_url, {upstream.name: mirror}).new == 1
    with session_scope(database_url) as session:
        stored = session.get(Change, "deploy-7")
        assert stored is not None
        return list(stored.carries)


def test_a_range_over_the_cap_keeps_its_oldest_commits_in_order(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "MAX_CARRIED", 3)
    upstream, mirror = _mirrored(tmp_path, database_url, 6)
    assert _deploy_carried(upstream, mirror, database_url) == upstream.shas[1:4]


def test_a_mirror_whose_git_stalls_falls_back_to_landing_times(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream, mirror = _mirrored(tmp_path, database_url, 4)
    os.mkfifo(mirror / "objects" / "info" / "alternates")  # git waits forever to open it, as on a hung mount
    monkeypatch.setattr(events, "RANGE_TIMEOUT_S", 1)

    with capture_logs() as logs:
        carried = _deploy_carried(upstream, mirror, database_url)

    assert carried == upstream.shas[1:]
    assert [log["mirror"] for log in logs if log["event"].startswith("deploy range read by landing time")] == [
        "acme__shop.git"]  # fmt: skip


def test_a_mirror_git_stuck_at_shutdown_is_killed_and_the_range_read_by_landing_times(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``git rev-list`` ran with ``subprocess.run``, unknown to ``stop_fetches``: stuck on a hung mount, it
    outlived ``culprit serve`` for RANGE_TIMEOUT_S, and new ones still started after the stop."""
    upstream, mirror = _mirrored(tmp_path, database_url, 4)
    alternates = mirror / "objects" / "info" / "alternates"
    os.mkfifo(alternates)  # git waits forever to open it, as on a hung mount
    monkeypatch.setattr(bounded_pipe, "_stopping", threading.Event())  # stop_fetches refuses git for the process's life
    carried: list[list[str]] = []
    storing = threading.Thread(target=lambda: carried.append(_deploy_carried(upstream, mirror, database_url)), daemon=True)
    storing.start()
    try:
        stuck = wait_until(lambda: running_processes_naming(f"{mirror} rev-list"), "git rev-list never started")

        stop_fetches()

        wait_until(lambda: not running_processes_naming(f"{mirror} rev-list"), f"still running: {stuck}")
        storing.join()
    finally:
        release_fifo(alternates)
    assert carried == [upstream.shas[1:]]
    alternates.unlink()  # the mount answers again, yet git no longer starts: the range is not listed
    assert events._rev_list(mirror, "--count", f"{upstream.shas[0]}..{upstream.shas[-1]}") is None


def test_git_lists_deploy_ranges_while_no_database_connection_is_held(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git listed each deploy's range (up to twice RANGE_TIMEOUT_S) inside the session that had already read
    its listed commits, holding a pooled connection (and on SQLite a read transaction) all that time."""
    upstream, mirror = _mirrored(tmp_path, database_url, 4)
    held: list[int] = []
    rev_list = events._rev_list

    def listing(*args: str) -> str | None:
        held.append(get_engine(database_url).pool.checkedout())
        return rev_list(*args)

    monkeypatch.setattr(events, "_rev_list", listing)
    deploys: list[Any] = [{"id": f"deploy-{n}", "kind": "deploy", "service": "shop", "repo": upstream.name,
                           "commits": [upstream.shas[0]], "commit_range": f"{upstream.shas[0]}..{upstream.shas[-1]}",
                           "time": utcnow().isoformat()} for n in (1, 2)]  # fmt: skip
    assert store_events(check_events(deploys), database_url, {upstream.name: mirror}).new == 2

    assert held == [0, 0, 0, 0]  # count and list, per deploy
    with session_scope(database_url) as session:
        stored = session.get(Change, "deploy-2")
        assert stored is not None and list(stored.carries) == upstream.shas
