"""A scheduler killed while posting the weekly digest: the week is posted once, when it comes back."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select

from bot.jobs import CLAIM_LEASE, WEEKLY_DIGESTS, digest_key, last_digest_time, post_missed_digest
from knowledge.claims import Claim
from knowledge.config import Settings
from knowledge.db import migrate, session_scope, utcnow
from tools.reports.digest import iso_week

CHANNEL = "C-DIGEST"


@pytest.fixture
def store(postgres_url: str) -> str:
    migrate(postgres_url)
    return postgres_url


@pytest.fixture
def settings(store: str) -> Settings:
    return Settings(database_url=store, digest_channel=CHANNEL)


def every_day_at_midnight() -> CronTrigger:
    return CronTrigger(hour=0, minute=0, timezone=ZoneInfo("UTC"))


def due_week(trigger: CronTrigger) -> str:
    due = last_digest_time(trigger, utcnow())
    assert due is not None
    return iso_week(due.date() - timedelta(days=1))


def dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(finished.stdout)


def claim_left_by(store: str, holder: str, week: str, age: timedelta = timedelta(seconds=5)) -> None:
    with session_scope(store) as session:
        session.add(Claim(scope=WEEKLY_DIGESTS, key=digest_key(week, CHANNEL), holder=holder, claimed_at=utcnow() - age))


def posted_digests(store: str) -> list[str]:
    """The keys (week:channel) of the digests marked posted."""
    with session_scope(store) as session:
        return list(session.scalars(select(Claim.key).where(Claim.scope == WEEKLY_DIGESTS, Claim.done_at.is_not(None))))


def test_the_last_due_digest_is_found_in_the_schedule_timezone() -> None:
    monday_nine = CronTrigger(day_of_week="mon", hour=9, timezone=ZoneInfo("Europe/Paris"))
    zone = ZoneInfo("Europe/Paris")
    assert last_digest_time(monday_nine, datetime(2025, 6, 11, 12, tzinfo=zone)) == datetime(2025, 6, 9, 9, tzinfo=zone)
    assert last_digest_time(monday_nine, datetime(2025, 6, 9, 8, 59, tzinfo=zone)) == datetime(2025, 6, 2, 9, tzinfo=zone)


@pytest.mark.postgres
def test_a_claim_left_by_a_dead_scheduler_on_this_host_is_posted_once_on_restart(store: str, settings: Settings) -> None:
    trigger = every_day_at_midnight()
    claim_left_by(store, f"{socket.gethostname()}:{dead_pid()}:deadbeef", due_week(trigger))
    posts: list[str] = []

    def post(channel: str, text: str, blocks: object, png: object) -> None:
        posts.append(channel)

    assert post_missed_digest(post, trigger, settings) is True
    assert post_missed_digest(post, trigger, settings) is False  # the next catch-up finds it posted
    assert posts == [CHANNEL]
    assert posted_digests(store) == [digest_key(due_week(trigger), CHANNEL)]


@pytest.mark.postgres
def test_a_live_claim_elsewhere_is_left_alone_until_its_lease_runs_out(store: str, settings: Settings) -> None:
    trigger = every_day_at_midnight()
    claim_left_by(store, "other-host:1:cafe", due_week(trigger))
    posts: list[str] = []
    assert post_missed_digest(lambda *args: posts.append(args[0]), trigger, settings) is False
    with session_scope(store) as session:
        held = session.get(Claim, (WEEKLY_DIGESTS, digest_key(due_week(trigger), CHANNEL)))
        held.claimed_at = utcnow() - CLAIM_LEASE - timedelta(minutes=1)
    assert post_missed_digest(lambda *args: posts.append(args[0]), trigger, settings) is True
    assert posts == [CHANNEL]


@pytest.mark.postgres
def test_a_scheduler_that_missed_the_digest_posts_it_when_it_starts(settings: Settings) -> None:
    trigger = every_day_at_midnight()
    posts: list[str] = []
    assert post_missed_digest(lambda *args: posts.append(args[0]), trigger, settings) is True
    assert post_missed_digest(lambda *args: posts.append(args[0]), trigger, settings) is False
    assert posts == [CHANNEL]
