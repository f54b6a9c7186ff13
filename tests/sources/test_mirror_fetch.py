"""A mirror's fetch from a real git server over a network the test slows down or stalls: a long first fetch
of a large repository finishes while objects keep arriving, and a stalled one fails naming the repository."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from knowledge.config import TrackedRepo
from knowledge.errors import InputError
from knowledge.ingest import bounded_pipe
from knowledge.sources import mirrors
from knowledge.sources.mirrors import fetch_mirror
from tests.sources.git_forge import bare_repository_of_random_files, serving
from tests.waiting import running_processes_naming, wait_until


def test_a_first_fetch_longer_than_the_silence_bound_finishes_while_objects_arrive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole fetch was bounded at 300 s, so a first fetch of a large repository was killed every poll and
    started again, for ever. Only silence is bounded now: git prints its progress while the pack arrives."""
    upstream = bare_repository_of_random_files(tmp_path / "forge", "shop", files=120, file_bytes=32 * 1024)
    monkeypatch.setattr(mirrors, "FETCH_SILENCE_S", 3)

    with serving(tmp_path / "forge", pace=lambda _number: time.sleep(0.1)) as forge:
        repo = TrackedRepo(name="acme/shop", url=f"{forge.url}/shop.git")
        mirror = fetch_mirror(repo, tmp_path / "mirrors", {})

    assert forge.sending_s > mirrors.FETCH_SILENCE_S  # longer than the bound, as a large repository's first fetch
    tip = subprocess.run(["git", "-C", str(mirror), "rev-parse", "main"], capture_output=True, text=True, check=True)
    assert tip.stdout == subprocess.run(["git", "-C", str(upstream), "rev-parse", "main"], capture_output=True,
                                        text=True, check=True).stdout  # fmt: skip


def test_a_fetch_whose_remote_stalls_is_killed_and_fails_naming_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server sends part of the pack and then nothing, keeping the connection open: git waits for ever."""
    bare_repository_of_random_files(tmp_path / "forge", "shop", files=120, file_bytes=8 * 1024)
    released = threading.Event()
    monkeypatch.setattr(mirrors, "FETCH_SILENCE_S", 1)

    def stall_after_the_first_piece(number: int) -> None:
        if number == 1:
            released.wait()

    with serving(tmp_path / "forge", pace=stall_after_the_first_piece) as forge:
        repo = TrackedRepo(name="acme/shop", url=f"{forge.url}/shop.git")
        try:
            with pytest.raises(InputError, match=r"^git fetch of acme/shop printed nothing for 1 s \(FETCH_SILENCE_S\)"):
                fetch_mirror(repo, tmp_path / "mirrors", {})
        finally:
            released.set()


def test_a_fetch_whose_remote_trickles_past_the_total_bound_is_killed_and_fails_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each piece comes within the silence bound, so only ``GIT_TIMEOUT_S`` ends a remote sending a byte a minute."""
    bare_repository_of_random_files(tmp_path / "forge", "shop", files=120, file_bytes=32 * 1024)
    monkeypatch.setattr(mirrors, "FETCH_SILENCE_S", 2)
    monkeypatch.setattr(mirrors, "GIT_TIMEOUT_S", 1)

    with serving(tmp_path / "forge", pace=lambda _number: time.sleep(0.2)) as forge:
        repo = TrackedRepo(name="acme/shop", url=f"{forge.url}/shop.git")
        with pytest.raises(InputError, match=r"^git fetch of acme/shop took over 1 s \(GIT_TIMEOUT_S\)$"):
            fetch_mirror(repo, tmp_path / "mirrors", {})


def test_stopping_the_fetches_at_shutdown_ends_a_stalled_fetch_and_its_remote_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll runs in a daemon thread, which dies with the bot, while its git went on: a fetch stalled on its
    remote, and git's remote helper holding the connection, outlived the bot, orphaned."""
    bare_repository_of_random_files(tmp_path / "forge", "shop", files=120, file_bytes=8 * 1024)
    monkeypatch.setattr(bounded_pipe, "_stopping", threading.Event())  # stop_fetches refuses git for the process's life
    stalled, released = threading.Event(), threading.Event()
    failures: list[str] = []

    def stall_after_the_first_piece(number: int) -> None:
        if number == 1:
            stalled.set()
            released.wait()

    def poll(repo: TrackedRepo) -> None:
        try:
            fetch_mirror(repo, tmp_path / "mirrors", {})
        except InputError as error:
            failures.append(str(error))

    with serving(tmp_path / "forge", pace=stall_after_the_first_piece) as forge:
        repo = TrackedRepo(name="acme/shop", url=f"{forge.url}/shop.git")
        polling = threading.Thread(target=poll, args=(repo,), daemon=True)
        polling.start()
        try:
            wait_until(stalled.is_set, "the fetch never reached the stalled remote")
            fetching = running_processes_naming(forge.url)
            assert len(fetching) >= 2  # git fetch, and the remote helper it started

            mirrors.stop_fetches()

            wait_until(lambda: not running_processes_naming(forge.url), f"still running: {fetching}")
            polling.join()
        finally:
            released.set()
    assert failures == ["git fetch of acme/shop stopped: culprit is shutting down"]

