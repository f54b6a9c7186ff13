"""Polling tracked repositories: fetch each mirror and ingest its new first-parent commits, once per cluster.

Every replica's scheduler polls every ``poll_seconds``; a claim keyed on the
repository and the poll's time slot lets exactly one replica do each slot's
work. The ingest itself starts from the remembered tip
(:mod:`knowledge.ingest.git_tips`), so an idle poll costs one small fetch and a
few ``git`` calls.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from knowledge.claims import claim, forget
from knowledge.config import TrackedRepo
from knowledge.db import session_scope, utcnow
from knowledge.errors import CulpritError
from knowledge.ingest.git_log import ingest_git
from knowledge.sources.freshness import POLLED, record_check
from knowledge.sources.mirrors import fetch_mirror, mask_url

log = structlog.get_logger(__name__)

REPO_POLLS = "repo_poll"  # claims keyed "<repo>:<slot>", one slot per poll interval
WEBHOOK_DELIVERIES = "webhook_delivery"  # claims keyed "<github|gitlab>:<delivery id>" (bot.sources_http)
CLAIMS_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class PollResult:
    """What one poll of one repository did: skipped (another replica has the slot), new changes, or an error."""

    repo: str
    polled: bool
    new: int = 0
    completed: int = 0
    error: str = ""


def poll_slot(now: datetime, poll_seconds: int) -> int:
    return int(now.timestamp()) // poll_seconds


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

    A failure (unreachable remote, refused token) is recorded on the source, so
    answers say its data is stale and why, and logged masked; it never raises.
    """
    slot = poll_slot(now or utcnow(), poll_seconds)
    if claim_slot and not claim(REPO_POLLS, f"{repo.name}:{slot}", url):
        return PollResult(repo.name, polled=False)
    checked_at = utcnow()  # whatever lands after the fetch starts is the next poll's
    try:
        mirror = fetch_mirror(repo, mirrors_dir, os.environ if environ is None else environ)
        report = ingest_git(mirror, url, branch=repo.branch, repo_name=repo.name)
    except CulpritError as error:
        message = mask_url(str(error))
        log.warning("repository poll failed", repo=repo.name, error=message)
        with session_scope(url) as session:
            record_check(session, repo.name, POLLED, error=message)
        return PollResult(repo.name, polled=True, error=message)
    with session_scope(url) as session:
        record_check(session, repo.name, POLLED, at=checked_at)
    if report.new or report.updated:
        log.info("repository polled", repo=repo.name, new=report.new, completed=report.updated)
    return PollResult(repo.name, polled=True, new=report.new, completed=report.updated)


def poll_repositories(
    repos: list[TrackedRepo], mirrors_dir: Path, url: str, poll_seconds: int, environ: Mapping[str, str] | None = None
) -> list[PollResult]:
    """One scheduler tick: poll every tracked repository, then drop poll and delivery claims older than a day."""
    started = time.perf_counter()
    now = utcnow()
    results = [poll_repository(repo, mirrors_dir, url, poll_seconds, environ=environ, now=now) for repo in repos]
    forget([REPO_POLLS, WEBHOOK_DELIVERIES], now - CLAIMS_KEPT, url)
    log.debug("poll tick", repos=len(repos), seconds=round(time.perf_counter() - started, 3))
    return results
