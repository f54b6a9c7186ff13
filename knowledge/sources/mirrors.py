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
import select
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from knowledge.config import TrackedRepo
from knowledge.errors import InputError, mask_url

GIT_SILENCE_S = 300
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
    """Run ``git [-C mirror] args``; a failure, a silence past ``GIT_SILENCE_S`` or a run past ``GIT_TIMEOUT_S``
    is an :class:`InputError` naming the operation (``args[0]``: init, fetch), the repository and git's last
    line, masked (git is killed)."""
    where = ["-C", str(mirror)] if mirror is not None else []
    env = dict(os.environ) | _credentials(repo, environ)
    process = subprocess.Popen(
        ["git", *where, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    try:
        errors = _messages(process, f"git {args[0]} of {repo.name}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()
    if process.returncode != 0:
        message = _reason(errors)
        for secret in secrets:
            message = message.replace(secret, "***")
        raise InputError(f"git {args[0]} of {repo.name} failed: {mask_url(message)}")


def _messages(process: subprocess.Popen[bytes], what: str) -> str:
    """The end of what git printed on stderr, read as it comes until git exits, waiting at most ``GIT_SILENCE_S``
    for each next byte (or for its exit once its output ended) and ``GIT_TIMEOUT_S`` in all."""
    assert process.stderr is not None
    descriptor = process.stderr.fileno()
    readable = select.poll()  # not select.select: a server may hold descriptors past FD_SETSIZE
    readable.register(descriptor, select.POLLIN)
    deadline = time.monotonic() + GIT_TIMEOUT_S
    kept, cut = b"", False
    while True:
        if not readable.poll(_wait_ms(deadline, what)):
            raise _silent(deadline, what)
        if not (chunk := os.read(descriptor, 1 << 16)):
            break
        kept += chunk
        cut, kept = cut or len(kept) > _KEPT_ERRORS, kept[-_KEPT_ERRORS:]
    try:
        process.wait(timeout=_wait_ms(deadline, what) / 1000)
    except subprocess.TimeoutExpired:
        raise _silent(deadline, what) from None
    text = kept.decode("utf-8", errors="replace")
    # A line cut at its start might hold the end of a secret the masking no longer recognises.
    return text.split("\n", 1)[-1] if cut else text


def _wait_ms(deadline: float, what: str) -> int:
    """How long the next wait may last: ``GIT_SILENCE_S``, or less where ``GIT_TIMEOUT_S`` ends first."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise InputError(f"{what} took over {GIT_TIMEOUT_S} s (GIT_TIMEOUT_S)")
    return int(min(GIT_SILENCE_S, left) * 1000) + 1


def _silent(deadline: float, what: str) -> InputError:
    if time.monotonic() >= deadline:
        return InputError(f"{what} took over {GIT_TIMEOUT_S} s (GIT_TIMEOUT_S)")
    return InputError(f"{what} printed nothing for {GIT_SILENCE_S} s (GIT_SILENCE_S): the remote or the network "
                      "stalled")  # fmt: skip


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
