"""Bare mirrors of tracked repositories under the data directory, fetched without leaking credentials.

Only the tracked branch is fetched (``+refs/heads/B:refs/heads/B``), so a poll
with nothing new costs one small fetch. A token reaches git through
``GIT_CONFIG_*`` environment variables (an ``http.extraHeader``), never the
command line or the remote's URL, and anything git prints is masked before it
becomes an error or a log line. The location always follows ``--``, so git never
reads it as an option (``--upload-pack=...`` would run a command).
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from knowledge.config import TrackedRepo
from knowledge.errors import InputError, mask_url
from knowledge.ingest.bounded_pipe import (
    BoundedPipe,
    RanTooLong,
    Stalled,
    Stopping,
    end_child,
    start_child,
    stop_children,
    stopping,
)

FETCH_SILENCE_S = 300
"""Longest git may go without printing a byte. A fetch prints its progress every second while objects arrive
(``--progress``), so a first fetch of a large repository runs as long as it needs, while one whose remote or
network stalled (a server computing nothing, a dropped connection git still waits on) is given up on."""
GIT_TIMEOUT_S = 3 * 3600
"""Longest a git command may run in all: a remote that trickles a byte a minute must not hold one of a tick's
few poll workers (``knowledge.sources.polling.POLL_WORKERS``) for ever."""
_KEPT_ERRORS = 64 * 1024  # the last part of git's messages kept: its fatal line, not hours of progress


def mirror_path(mirrors_dir: Path, repo: TrackedRepo) -> Path:
    """One bare repository per tracked name; ``/`` in names becomes ``__`` so names never nest."""
    return mirrors_dir / (repo.name.replace("/", "__") + ".git")


def tracked_mirrors(repos: list[TrackedRepo], mirrors_dir: Path) -> dict[str, Path]:
    """Each tracked repository's mirror by name (where change events resolve commit ranges)."""
    return {repo.name: mirror_path(mirrors_dir, repo) for repo in repos}


def _credentials(repo: TrackedRepo, environ: Mapping[str, str]) -> dict[str, str]:
    """Git's environment for this repository: its token as an HTTP header, and never a prompt."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    if repo.token_env:
        token = environ.get(repo.token_env)
        if not token:
            raise InputError(f"repository {repo.name}: the environment variable {repo.token_env} (its token) is not set")
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env |= {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }
    return env


def _reason(stderr: str) -> str:
    """Git's first ``fatal:`` or ``error:`` line, which says what went wrong; the last line is often advice
    ("and the repository exists."). Otherwise the last line, or "git failed" when it printed nothing."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return next((line for line in lines if line.startswith(("fatal:", "error:"))), lines[-1] if lines else "git failed")


def _run_git(
    args: list[str], repo: TrackedRepo, environ: Mapping[str, str], secrets: list[str], mirror: Path | None = None
) -> None:
    """Run ``git [-C mirror] args``; a failure, a silence past ``FETCH_SILENCE_S``, a run past ``GIT_TIMEOUT_S``
    or :func:`stop_fetches` is an :class:`InputError` naming the operation (``args[0]``: init, fetch), the
    repository and git's last line, masked (git is killed)."""
    what = f"git {args[0]} of {repo.name}"
    process = _start_git(["git", *(["-C", str(mirror)] if mirror is not None else []), *args], repo, environ, what)
    try:
        errors = _messages(process, what)
    finally:
        end_child(process)
        assert process.stderr is not None
        process.stderr.close()
    if process.returncode != 0 and stopping():
        raise InputError(f"{what} stopped: culprit is shutting down")
    if process.returncode != 0:
        message = _reason(errors)
        for secret in secrets:
            message = message.replace(secret, "***")
        raise InputError(f"{what} failed: {mask_url(message)}")


def _start_git(command: list[str], repo: TrackedRepo, environ: Mapping[str, str], what: str) -> subprocess.Popen[bytes]:
    """Start git in a process group of its own, known to :func:`stop_fetches`; refused once it was called."""
    env = dict(os.environ) | _credentials(repo, environ)
    try:
        return start_child(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
    except Stopping:
        raise InputError(f"{what} not started: culprit is shutting down") from None


def stop_fetches() -> None:
    """Kill every git a poll is running (a fetch, the ``git log`` and ``rev-list`` that ingest its mirror and the
    short ``rev-parse`` and ``config`` around them, with the remote helper a fetch started) and refuse new ones, for the rest of the process: polls run in
    daemon threads (:mod:`knowledge.sources.polling`), which die with the bot, while their git, stalled on a
    remote or a hung mount, would go on, orphaned. Returns once each git has exited."""
    stop_children()


def _messages(process: subprocess.Popen[bytes], what: str) -> str:
    """The end of what git printed on stderr, read as it comes until git exits, waiting at most
    ``FETCH_SILENCE_S`` for each next byte (or for its exit once its output ended) and ``GIT_TIMEOUT_S`` in all."""
    assert process.stderr is not None
    pipe = BoundedPipe(process.stderr, FETCH_SILENCE_S, GIT_TIMEOUT_S)
    kept, cut = b"", False
    try:
        while chunk := pipe.read(1 << 16):
            kept += chunk
            cut, kept = cut or len(kept) > _KEPT_ERRORS, kept[-_KEPT_ERRORS:]
        pipe.exit_status(process)
    except RanTooLong:
        raise InputError(f"{what} took over {GIT_TIMEOUT_S} s (GIT_TIMEOUT_S)") from None
    except Stalled:
        raise InputError(f"{what} printed nothing for {FETCH_SILENCE_S} s (FETCH_SILENCE_S): the remote or the "
                         "network stalled") from None  # fmt: skip
    text = kept.decode("utf-8", errors="replace")
    # A line cut at its start might hold the end of a secret the masking no longer recognises.
    return text.split("\n", 1)[-1] if cut else text


def _location(repo: TrackedRepo) -> str:
    """The fetch URL with any user name dropped from https URLs (the token header authenticates)."""
    location = repo.location
    if "://" in location:
        parts = urlsplit(location)
        if parts.scheme in ("http", "https") and parts.username:
            return urlunsplit(parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else "")))
    return location


def fetch_mirror(repo: TrackedRepo, mirrors_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Create the bare mirror if needed, then fetch the tracked branch; returns the mirror's path.

    Raises :class:`InputError` with a masked message when git fails (unreachable
    remote, unknown branch, refused credentials).
    """
    environ = os.environ if environ is None else environ
    secrets = [environ[repo.token_env]] if repo.token_env and environ.get(repo.token_env) else []
    mirror = mirror_path(mirrors_dir, repo)
    if not (mirror / "HEAD").exists():
        mirror.mkdir(parents=True, exist_ok=True)
        _run_git(["init", "--quiet", "--bare", "--", str(mirror)], repo, environ, secrets)
    refspec = f"+refs/heads/{repo.branch}:refs/heads/{repo.branch}"
    _run_git(
        # --progress, not --quiet: its progress is how a long fetch shows it is not stalled.
        ["fetch", "--progress", "--no-tags", "--prune", "--", _location(repo), refspec],
        repo, environ, secrets, mirror,
    )  # fmt: skip
    return mirror
