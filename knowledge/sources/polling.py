"""Polling tracked repositories: fetch each mirror and ingest its new first-parent commits, once per cluster.

Every replica's scheduler polls every ``poll_seconds``; a claim keyed on the
repository and the poll's time slot lets exactly one replica do each slot's
work. The ingest itself starts from the remembered tip
(:mod:`knowledge.ingest.git_tips`), so an idle poll costs one small fetch and a
few ``git`` calls.

A tick polls its repositories side by side, at most ``POLL_WORKERS`` at a time, each
in its own thread, and a repository whose poll from an earlier tick is still
running (a slow or stalled fetch, bounded only at ``GIT_TIMEOUT_S``) is left alone
and said to be, so one repository's fetch never holds the others' polls.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from knowledge.claims import claim, forget
from knowledge.config import TrackedRepo
from knowledge.db import UNREACHABLE, session_scope, utcnow
from knowledge.errors import CulpritError, mask_url, masked_error
from knowledge.ingest.git_log import ingest_git
from knowledge.sources.freshness import POLLED, record_check
from knowledge.sources.mirrors import fetch_mirror

log = structlog.get_logger(__name__)

REPO_POLLS = "repo_poll"  # claims keyed "<repo>:<slot>", one slot per poll interval
WEBHOOK_DELIVERIES = "webhook_delivery"  # claims keyed "<github|gitlab>:<delivery id>" (bot.sources_http)
CLAIMS_KEPT = timedelta(days=1)
POLL_WORKERS = 4
"""Most repositories one replica fetches and ingests at once: enough that a few slow fetches leave the others
polled, few enough that a tick's git processes and database sessions stay a small share of the machine."""

_workers = threading.BoundedSemaphore(POLL_WORKERS)
_running: dict[str, Future[PollResult]] = {}  # each repository's latest poll, by name, while it may still run
_running_lock = threading.Lock()


@dataclass(frozen=True)
class PollResult:
    """What one poll of one repository did: skipped (another replica has the slot), new changes, or an error;
    ``still_running``: its fetch and ingest had not ended when the tick stopped waiting (``polled``), or its
    poll from an earlier tick had not, so this tick left it alone (not ``polled``)."""

    repo: str
    polled: bool
    new: int = 0
    completed: int = 0
    error: str = ""
    still_running: bool = False


def poll_slot(now: datetime, poll_seconds: int) -> int:
    return int(now.timestamp()) // poll_seconds


def poll_failure(error: Exception) -> str:
    """Why a poll failed, masked: culprit's own message, else the error's type and first words (a database
    that went away, a disk that filled up), so an unexpected failure is still named without a traceback."""
    return mask_url(str(error)) if isinstance(error, CulpritError) else masked_error(error)


def poll_repository(
    repo: TrackedRepo,
    mirrors_dir: Path,
    url: str,
    poll_seconds: int,
    *,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
    claim_slot: bool = True,
) -> PollResult:
    """Fetch and ingest ``repo`` unless another replica already claimed this poll slot
    (``claim_slot=False``: now, whatever the schedule, as ``culprit ingest repos`` does).

    A failure (unreachable remote, refused token, the database gone, a full disk) is
    recorded on the source when the database allows, so answers say its data is stale
    and why, and logged once, masked; it never raises, so one repository's failure
    never stops the others' polls.
    """
    try:
        return _poll(repo, mirrors_dir, url, poll_seconds, environ, now, claim_slot)
    except Exception as error:  # noqa: BLE001 - whatever one repository meets must not end the tick for the others
        message = poll_failure(error)
        log.warning("repository poll failed", repo=repo.name, error=message)
        _record_failure(repo.name, message, url)
        return PollResult(repo.name, polled=True, error=message)


def _record_failure(name: str, message: str, url: str) -> None:
    """Put the failure on the source; with the database down there is nowhere to put it, and no answer
    to show it in until it is back (the failure was logged)."""
    try:
        with session_scope(url) as session:
            record_check(session, name, POLLED, error=message)
    except UNREACHABLE:
        pass


def _poll(
    repo: TrackedRepo,
    mirrors_dir: Path,
    url: str,
    poll_seconds: int,
    environ: Mapping[str, str] | None,
    now: datetime | None,
    claim_slot: bool,
) -> PollResult:
    """The poll itself: claim the slot, fetch, ingest, record the check; raises whatever it meets."""
    slot = poll_slot(now or utcnow(), poll_seconds)
    if claim_slot and not claim(REPO_POLLS, f"{repo.name}:{slot}", url):
        return PollResult(repo.name, polled=False)
    checked_at = utcnow()  # whatever lands after the fetch starts is the next poll's
    mirror = fetch_mirror(repo, mirrors_dir, os.environ if environ is None else environ)
    report = ingest_git(mirror, url, branch=repo.branch, repo_name=repo.name)
    with session_scope(url) as session:
        record_check(session, repo.name, POLLED, at=checked_at)
    if report.new or report.updated:
        log.info("repository polled", repo=repo.name, new=report.new, completed=report.updated)
    return PollResult(repo.name, polled=True, new=report.new, completed=report.updated)


def poll_repositories(
    repos: list[TrackedRepo],
    mirrors_dir: Path,
    url: str,
    poll_seconds: int,
    environ: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
    wait_s: float | None = None,
) -> list[PollResult]:
    """One scheduler tick: poll every tracked repository side by side (each failing on its own), then drop poll
    and delivery claims older than a day (the next tick does, while the database is unreachable).

    The tick waits for its polls at most ``wait_s`` (all of them when ``None``): a poll still running then goes
    on in its thread, and later ticks leave that repository alone until it ends, so a fetch that takes hours
    holds neither the scheduler's job nor the other repositories' polls. Results are in ``repos``' order.
    """
    started = time.perf_counter()
    now = now or utcnow()
    polls = {repo.name: _start_poll(repo, mirrors_dir, url, poll_seconds, environ, now) for repo in repos}
    wait([poll for poll in polls.values() if poll is not None], timeout=wait_s)
    results = [_outcome(repo.name, polls[repo.name]) for repo in repos]
    try:
        forget([REPO_POLLS, WEBHOOK_DELIVERIES], now - CLAIMS_KEPT, url)
    except UNREACHABLE as error:
        log.warning("old poll claims not dropped: database unreachable", error=poll_failure(error))
    log.debug("poll tick", repos=len(repos), seconds=round(time.perf_counter() - started, 3))
    return results


def _start_poll(
    repo: TrackedRepo, mirrors_dir: Path, url: str, poll_seconds: int, environ: Mapping[str, str] | None, now: datetime
) -> Future[PollResult] | None:
    """Start ``repo``'s poll in a thread of its own (which waits for one of the ``POLL_WORKERS``); ``None`` when
    its previous poll is still running. The thread is a daemon: a fetch git is stuck in never holds the exit,
    and ``culprit serve`` ends that git as it exits (:func:`knowledge.sources.mirrors.stop_fetches`)."""
    with _running_lock:
        previous = _running.get(repo.name)
        if previous is not None and not previous.done():
            log.warning("repository poll skipped: its previous poll is still running", repo=repo.name)
            return None
        poll: Future[PollResult] = Future()
        _running[repo.name] = poll

    def run() -> None:
        try:
            with _workers:
                poll.set_result(poll_repository(repo, mirrors_dir, url, poll_seconds, environ=environ, now=now))
        except BaseException as error:  # an interrupt: the tick waiting on it must not wait for ever
            poll.set_exception(error)
            raise

    threading.Thread(target=run, name=f"repo-poll {repo.name}", daemon=True).start()
    return poll


def _outcome(name: str, poll: Future[PollResult] | None) -> PollResult:
    if poll is None:
        return PollResult(name, polled=False, still_running=True)
    if not poll.done():
        return PollResult(name, polled=True, still_running=True)
    return poll.result()
