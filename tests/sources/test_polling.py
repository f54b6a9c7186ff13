"""A tracked repository is mirrored and polled: each poll stores what landed since the last one,
one replica per poll slot does the work, and a failing remote never shows its token."""

from __future__ import annotations

import base64
import subprocess
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from structlog.testing import capture_logs

from knowledge.changes import Change
from knowledge.claims import Claim
from knowledge.config import TrackedRepo
from knowledge.db import session_scope, utcnow
from knowledge.sources.freshness import source_states
from knowledge.sources.mirrors import mirror_path
from knowledge.sources.polling import REPO_POLLS, PollResult, poll_failure, poll_repositories, poll_repository
from tests.sources.git_forge import bare_repository_of_random_files, serving
from tests.sources.upstream import Upstream

POLL = 60


def _stored(url: str) -> dict[str, Change]:
    with session_scope(url) as session:
        changes = session.scalars(select(Change).options(selectinload(Change.files)))
        return {change.id: change for change in changes}


def test_polls_store_new_first_parent_commits_incrementally(database_url: str, tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path / "shop")
    first = [upstream.commit(f"src/a{n}.py", f"add module a{n}") for n in range(3)]
    repo = TrackedRepo(**upstream.tracked())
    mirrors = tmp_path / "mirrors"
    now = utcnow()

    initial = poll_repository(repo, mirrors, database_url, POLL, now=now)
    assert (initial.polled, initial.new, initial.error) == (True, 3, "")
    mirror = mirror_path(mirrors, repo)
    assert subprocess.run(["git", "-C", str(mirror), "rev-parse", "--is-bare-repository"],
                          capture_output=True, text=True).stdout.strip() == "true"  # fmt: skip

    later = [upstream.commit("src/b.py", "add module b", lines=7), upstream.commit("src/a0.py", "grow a0", lines=2)]
    second = poll_repository(repo, mirrors, database_url, POLL, now=now + timedelta(seconds=POLL))
    idle = poll_repository(repo, mirrors, database_url, POLL, now=now + timedelta(seconds=2 * POLL))

    assert (second.new, idle.new, idle.polled) == (2, 0, True)
    stored = _stored(database_url)
    assert set(stored) == set(first + later)
    assert [(f.path, f.added, f.deleted) for f in stored[later[0]].files] == [("src/b.py", 7, 0)]
    assert stored[later[1]].repo == "acme/shop" and not stored[later[1]].partial and stored[later[1]].kind == "commit"
    with session_scope(database_url) as session:
        (state,) = source_states(session)
    assert (state.source, state.kind, state.error) == ("acme/shop", "git", "")
    assert state.checked_at is not None and state.checked_at >= now


def test_a_poll_stores_a_commit_dated_in_the_future_as_landing_when_read_and_logs_it(
    database_url: str, tmp_path: Path
) -> None:
    """A committer's clock set to 2099: the poll stored the commit as landing then, a suspect in every incident's
    window. It lands when the poll read it (it was on the branch by then), logged by sha with its reason."""
    upstream = Upstream.create(tmp_path / "shop")
    wrong = upstream.commit("src/a.py", "add module a", when=4_070_908_800)  # 2099-01-01T00:00:00Z
    right = upstream.commit("src/b.py", "add module b")
    before = utcnow().replace(microsecond=0)

    with capture_logs() as logs:
        result = poll_repository(TrackedRepo(**upstream.tracked()), tmp_path / "mirrors", database_url, POLL)

    stored = _stored(database_url)
    assert (result.new, result.error, set(stored)) == (2, "", {wrong, right})
    assert before <= stored[wrong].landed_time <= utcnow()
    assert [(log["repo"], log["change"]) for log in logs if log["event"] == "commit dated in the future"] == [
        ("acme/shop", wrong)]
    assert "commit date 2099-01-01T00:00:00Z is in the future" in repr(logs)


def test_one_replica_per_poll_slot(database_url: str, tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path / "shop")
    shas = [upstream.commit(f"src/m{n}.py", f"module {n}") for n in range(4)]
    repo = TrackedRepo(**upstream.tracked())
    now = utcnow()
    results = []
    start = threading.Barrier(2)

    def replica(name: str) -> None:
        start.wait()
        results.append(poll_repository(repo, tmp_path / name / "mirrors", database_url, POLL, now=now))

    threads = [threading.Thread(target=replica, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(result.polled for result in results) == [False, True]
    assert sum(result.new for result in results) == 4
    assert set(_stored(database_url)) == set(shas)


class _RefusingForge(BaseHTTPRequestHandler):
    """A git host on loopback that records the Authorization header and refuses every request."""

    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.seen.append(self.headers.get("Authorization", ""))
        self.send_response(403)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_token_reaches_the_forge_but_never_an_error_or_the_store(database_url: str, tmp_path: Path) -> None:
    token = "ghp-secret-token-4e1f"
    forge = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingForge)
    threading.Thread(target=forge.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{forge.server_address[1]}/acme/shop.git"
        repo = TrackedRepo(name="acme/shop", url=url, token_env="SHOP_TOKEN")
        result = poll_repository(repo, tmp_path / "mirrors", database_url, POLL, environ={"SHOP_TOKEN": token})
    finally:
        forge.shutdown()

    expected = "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
    assert expected in _RefusingForge.seen
    assert result.polled and "acme/shop" in result.error and token not in result.error
    with session_scope(database_url) as session:
        (state,) = source_states(session)
    assert state.error == result.error and state.checked_at is None
    config = (tmp_path / "mirrors" / "acme__shop.git" / "config").read_text()
    assert token not in config and base64.b64encode(f"x-access-token:{token}".encode()).decode() not in config


def test_a_missing_token_variable_is_named_not_guessed(database_url: str, tmp_path: Path) -> None:
    repo = TrackedRepo(name="acme/shop", url="https://127.0.0.1:9/acme/shop.git", token_env="SHOP_TOKEN")
    result = poll_repository(repo, tmp_path / "mirrors", database_url, POLL, environ={})
    assert "SHOP_TOKEN" in result.error and "not set" in result.error


def test_culprit_ingest_repos_polls_every_tracked_repository_now(database_url: str, tmp_path: Path) -> None:
    import json
    import os
    import sys

    upstream = Upstream.create(tmp_path / "shop")
    shas = [upstream.commit("src/a.py", "first"), upstream.commit("src/b.py", "second")]
    environment = {**os.environ, "CULPRIT_REPOS": json.dumps([upstream.tracked()])}
    culprit = str(Path(sys.executable).with_name("culprit"))

    def run() -> list[dict[str, object]]:
        done = subprocess.run([culprit, "ingest", "repos", "--json"], env=environment, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["polled"]

    assert [(result["repo"], result["new"]) for result in run()] == [("acme/shop", 2)]
    assert [result["new"] for result in run()] == [0]  # the same slot: run by hand, it polls anyway
    assert set(_stored(database_url)) == set(shas)


def test_culprit_ingest_repos_exits_1_when_a_repository_failed(database_url: str, tmp_path: Path) -> None:
    import json
    import os
    import sys

    upstream = Upstream.create(tmp_path / "shop")
    upstream.commit("src/a.py", "first")
    gone = {"name": "acme/gone", "path": str(tmp_path / "no-such-clone")}
    environment = {**os.environ, "CULPRIT_REPOS": json.dumps([gone, upstream.tracked()])}
    culprit = str(Path(sys.executable).with_name("culprit"))

    done = subprocess.run([culprit, "ingest", "repos", "--json"], env=environment, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    polled = {result["repo"]: result for result in json.loads(done.stdout)["polled"]}
    assert polled["acme/gone"]["error"] and polled["acme/shop"]["new"] == 1  # the others are still polled


def test_a_location_that_looks_like_an_option_reaches_git_as_a_place(database_url: str, tmp_path: Path) -> None:
    # Settings refuse such a url; a repository built around that check still never runs a command.
    ran = tmp_path / "ran"
    repo = TrackedRepo.model_construct(name="acme/shop", url=f"--upload-pack=touch {ran};", path=None,
                                       branch="main", token_env=None)  # fmt: skip
    result = poll_repository(repo, tmp_path / "mirrors", database_url, POLL, environ={})
    assert "acme/shop failed" in result.error and "--upload-pack=touch" in result.error  # named as the place
    assert not ran.exists()


def test_a_mirror_whose_remote_is_gone_names_the_failing_fetch(database_url: str, tmp_path: Path) -> None:
    import shutil

    upstream = Upstream.create(tmp_path / "shop")
    upstream.commit("src/a.py", "first")
    repo = TrackedRepo(**upstream.tracked())
    assert poll_repository(repo, tmp_path / "mirrors", database_url, POLL).error == ""
    shutil.rmtree(upstream.path)  # the repository moved away: the mirror stays, its fetch cannot reach it

    result = poll_repository(repo, tmp_path / "mirrors", database_url, POLL, now=utcnow() + timedelta(seconds=POLL))

    assert result.polled and result.error.startswith("git fetch of acme/shop failed: ")
    # git's own reason, with the place it looked, rather than its closing advice ("and the repository exists.")
    assert f"'{upstream.path}' does not appear to be a git repository" in result.error


def test_a_repository_whose_poll_breaks_fails_on_its_own(database_url: str, tmp_path: Path) -> None:
    healthy = Upstream.create(tmp_path / "shop")
    shas = [healthy.commit("src/a.py", "first")]
    broken = Upstream.create(tmp_path / "billing", name="acme/billing")
    broken.commit("src/b.py", "first")
    repos = [TrackedRepo(**broken.tracked()), TrackedRepo(**healthy.tracked())]
    mirrors = tmp_path / "mirrors"
    mirrors.mkdir()
    (mirrors / "acme__billing.git").write_text("not a mirror")  # a file where the mirror goes: an OSError, not ours
    stale_claim = utcnow() - timedelta(days=2)
    with session_scope(database_url) as session:
        session.add(Claim(scope=REPO_POLLS, key="acme/shop:1", holder="gone", claimed_at=stale_claim))

    with capture_logs() as logs:
        results = poll_repositories(repos, mirrors, database_url, POLL)

    assert [(result.repo, result.new) for result in results] == [("acme/billing", 0), ("acme/shop", 1)]
    assert results[0].error.startswith("FileExistsError") and results[1].error == ""
    assert [log["repo"] for log in logs if log["event"] == "repository poll failed"] == ["acme/billing"]
    assert set(_stored(database_url)) == set(shas)
    with session_scope(database_url) as session:
        states = {state.source: state.error for state in source_states(session)}
        assert session.get(Claim, (REPO_POLLS, "acme/shop:1")) is None  # the tick's clean-up still ran
    assert states == {"acme/billing": results[0].error, "acme/shop": ""}


def test_with_the_database_down_each_poll_fails_and_the_tick_ends(tmp_path: Path) -> None:
    password = "db-password-81c3"
    down = f"postgresql+psycopg://culprit:{password}@127.0.0.1:1/culprit?connect_timeout=2"
    repos = [TrackedRepo(**Upstream.create(tmp_path / name, name=f"acme/{name}").tracked()) for name in ("a", "b")]

    with capture_logs() as logs:
        results = poll_repositories(repos, tmp_path / "mirrors", down, POLL)

    assert [result.repo for result in results] == ["acme/a", "acme/b"]
    assert all(result.error.startswith("OperationalError") for result in results)
    failures = [log for log in logs if log["event"] == "repository poll failed"]
    assert sorted(log["repo"] for log in failures) == ["acme/a", "acme/b"]  # polled side by side
    assert [log["event"] for log in logs if "claims" in log["event"]] == ["old poll claims not dropped: database unreachable"]
    assert password not in repr(logs) and password not in repr(results)


def test_a_poll_failure_cut_through_a_password_does_not_show_it() -> None:
    """The text was cut at 300 characters before it was masked: a cut through a URL's password left no
    ``@`` for the mask to find, so the first part of the password reached the log and the source's state."""
    error = OSError("x" * 250 + "could not reach postgresql+psycopg://ops:hunter2hunter2@db.internal/culprit")

    assert "hunter" not in poll_failure(error) and poll_failure(error).startswith("OSError: xxx")
    assert poll_failure(OSError("at https://ops:hunter2@git.internal/x.git")) == "OSError: at https://***@git.internal/x.git"


def test_a_stalled_fetch_holds_neither_the_other_repositories_nor_the_next_tick(
    database_url: str, tmp_path: Path
) -> None:
    """Repositories were polled one after another: a fetch whose remote stalled (up to FETCH_SILENCE_S, or a
    trickle for up to 3 hours) held every other repository's poll, so what landed there went unseen."""
    bare_repository_of_random_files(tmp_path / "forge", "billing", files=120, file_bytes=8 * 1024)
    shop = Upstream.create(tmp_path / "shop")
    first = shop.commit("src/a.py", "first")
    released = threading.Event()
    mirrors = tmp_path / "mirrors"
    now = utcnow()
    ticks: list[list[object]] = []

    def stall_after_the_first_piece(number: int) -> None:
        if number == 1:
            released.wait()

    def first_tick() -> None:
        try:
            ticks.append(poll_repositories(repos, mirrors, database_url, POLL, now=now))
        except BaseException as error:  # reaches the test's assertions below
            ticks.append([error])

    with serving(tmp_path / "forge", pace=stall_after_the_first_piece) as forge:
        repos = [TrackedRepo(name="acme/billing", url=f"{forge.url}/billing.git"), TrackedRepo(**shop.tracked())]
        ticking = threading.Thread(target=first_tick)
        ticking.start()
        try:
            while first not in _stored(database_url) and not ticks:
                time.sleep(0.05)  # the positive signal: shop's row, stored while billing's fetch is held
            assert not ticks and first in _stored(database_url)

            second = shop.commit("src/b.py", "second")
            later = poll_repositories(repos, mirrors, database_url, POLL, now=now + timedelta(seconds=POLL))
            while later[1].still_running:  # shop's first poll was still recording its check after storing its row
                time.sleep(0.05)
                later = poll_repositories(repos, mirrors, database_url, POLL, now=now + timedelta(seconds=POLL))
        finally:
            released.set()
            ticking.join()

    assert later[0] == PollResult("acme/billing", polled=False, still_running=True)  # left alone, and said so
    assert (later[1].repo, later[1].new, later[1].error) == ("acme/shop", 1, "")
    assert second in _stored(database_url)
    (tick,) = ticks
    assert [(result.repo, result.new, result.error) for result in tick] == [
        ("acme/billing", 1, ""), ("acme/shop", 1, "")]  # billing's fetch finished once the forge let it
