import queue
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from slack_sdk import WebClient
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError

from bot.jobs import WEEKLY_DIGESTS, build_scheduler, post_weekly_digest
from knowledge.claims import Claim
from knowledge.config import Settings, TrackedRepo, WikiSource
from knowledge import db
from knowledge.db import migrate, session_scope, utcnow
from knowledge.reports import BugReport
from tools.reports.intake import bump_daily_counts, purge_expired_reports


def test_two_replicas_post_the_weekly_digest_once(postgres_url: str) -> None:
    settings = Settings(database_url=postgres_url, digest_channel="C-DIGEST")
    migrate(postgres_url)
    with session_scope(postgres_url) as session:
        bump_daily_counts(session, Counter({(date(2025, 6, 3), "login"): 12, (date(2025, 6, 4), "crash"): 7}))
    posts: list[tuple[str, str, bytes | None]] = []
    barrier = threading.Barrier(2)

    def replica() -> bool:
        barrier.wait()
        return post_weekly_digest(lambda channel, text, blocks, png: posts.append((channel, text, png)), settings, due=datetime(2025, 6, 9, 9, tzinfo=UTC))

    with ThreadPoolExecutor(max_workers=2) as replicas:
        outcomes = [replicas.submit(replica) for _ in range(2)]
        assert sorted(outcome.result() for outcome in outcomes) == [False, True]  # .result() re-raises a replica's error
    assert len(posts) == 1
    channel, text, png = posts[0]
    assert channel == "C-DIGEST" and "login: 12 reports" in text and png and png.startswith(b"\x89PNG")
    with session_scope(postgres_url) as session:
        run = session.scalars(select(Claim).where(Claim.scope == WEEKLY_DIGESTS)).one()
        assert (run.key, run.done_at is not None) == ("2025-W23:C-DIGEST", True)
    assert post_weekly_digest(lambda *args: posts.append(args), settings, due=datetime(2025, 6, 9, 9, tzinfo=UTC)) is False


def test_a_digest_due_before_utc_midnight_counts_each_day_whole_in_one_digest(database_url: str) -> None:
    """Monday 09:00 in Auckland is Sunday 21:00 UTC, and the daily counts cut days in UTC: the digest ended on that
    Sunday, counting its first 21 hours, and the next one began on Monday, so Sunday's last hours were in none."""
    settings = Settings(database_url=database_url, digest_channel="C-DIGEST", digest_timezone="Pacific/Auckland")
    zone = ZoneInfo("Pacific/Auckland")
    posts: list[str] = []
    with session_scope(database_url) as session:
        bump_daily_counts(session, Counter({(date(2025, 6, 8), "login"): 7}))  # Sunday, up to 21:00 UTC
    assert post_weekly_digest(lambda channel, text, blocks, png: posts.append(text), settings, due=datetime(2025, 6, 9, 9, tzinfo=zone))
    with session_scope(database_url) as session:
        bump_daily_counts(session, Counter({(date(2025, 6, 8), "login"): 3}))  # Sunday 21:00 to midnight UTC
    assert post_weekly_digest(lambda channel, text, blocks, png: posts.append(text), settings, due=datetime(2025, 6, 16, 9, tzinfo=zone))
    assert "2025-06-01 to 2025-06-07 (2025-W23)" in posts[0] and "no reports this week" in posts[0]
    assert "2025-06-08 to 2025-06-14 (2025-W24)" in posts[1] and "login: 10 reports" in posts[1]


def test_digest_fires_monday_at_the_configured_hour_and_zone(data_dir: Path) -> None:
    scheduler = build_scheduler(lambda *args: None, Settings(data_dir=data_dir, digest_timezone="Europe/Paris"))
    trigger = scheduler.get_job("weekly_digest").trigger
    zone = ZoneInfo("Europe/Paris")
    fire = trigger.get_next_fire_time(None, datetime(2025, 6, 4, 12, tzinfo=zone))
    assert fire == datetime(2025, 6, 9, 9, tzinfo=zone) and fire.strftime("%A") == "Monday"
    assert {job.id for job in scheduler.get_jobs()} == {"weekly_digest", "missed_digest", "report_alerts", "report_classification", "report_retention", "slack_delivery_retention", "model_retrain", "thread_retention", "auto_investigation_retention"}


def test_with_a_slack_client_the_scheduler_also_sends_unsent_answers(data_dir: Path) -> None:
    from bot.outbox import send_unsent_replies

    scheduler = build_scheduler(lambda *args: None, Settings(data_dir=data_dir), WebClient(token="xoxb-test"))
    job = scheduler.get_job("unsent_replies")
    assert job.func is send_unsent_replies and job.trigger.interval.total_seconds() == 30
    assert scheduler.get_job("unsent_replies_retention") is not None


def _every_job(data_dir: Path) -> Settings:
    """Settings under which the scheduler registers every job it has: tracked repositories, wiki sources."""
    return Settings(
        data_dir=data_dir, repos=[TrackedRepo(name="acme/web", url="https://git.example.com/acme/web.git")],
        wiki_sources=[WikiSource(kind="notion", name="eng", path=data_dir / "notion")],
    )  # fmt: skip


def test_every_job_gets_a_thread_while_all_the_others_hold_theirs(data_dir: Path) -> None:
    """APScheduler's default pool has 10 threads and the scheduler registers up to 13 jobs: while long ones
    (a poll, a wiki sync, the retrain) held threads, a job due meanwhile waited in the pool's queue, and
    starting more than a second late it was skipped with only a "missed by" warning."""
    scheduler = build_scheduler(lambda *args: None, _every_job(data_dir), WebClient(token="xoxb-test"))
    jobs = scheduler.get_jobs()
    all_running = threading.Barrier(len(jobs))

    def hold_a_thread_until_every_job_runs() -> None:
        all_running.wait(timeout=120)  # a safety net: it breaks only when some job never got a thread

    for job in jobs:
        job.modify(func=hold_a_thread_until_every_job_runs, args=(), kwargs={}, next_run_time=utcnow())
    ended: queue.Queue[JobExecutionEvent] = queue.Queue()
    scheduler.add_listener(ended.put, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    scheduler.start()
    try:
        outcomes = [ended.get(timeout=240) for _ in jobs]
    finally:
        scheduler.shutdown()
    assert sorted((event.job_id, event.code, event.exception) for event in outcomes) == sorted(
        (job.id, EVENT_JOB_EXECUTED, None) for job in jobs
    )


def test_interval_jobs_run_late_rather_than_not_at_all(data_dir: Path) -> None:
    """Interval jobs had APScheduler's default misfire grace, one second: a run that started later was skipped."""
    scheduler = build_scheduler(lambda *args: None, _every_job(data_dir), WebClient(token="xoxb-test"))
    interval_jobs = {job.id: job for job in scheduler.get_jobs() if hasattr(job.trigger, "interval")}
    assert set(interval_jobs) == {"missed_digest", "report_classification", "repository_polls", "wiki_source_syncs", "unsent_replies"}
    for job in interval_jobs.values():
        assert (job.misfire_grace_time, job.coalesce) == (job.trigger.interval.total_seconds(), True), job.id


def test_the_nightly_purge_gives_up_on_a_report_another_session_holds(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL waits for a lock forever by default: a purge deleting a report whose row another session held
    (a psql transaction left open, a replica frozen mid-transaction) kept its scheduler thread for as long as
    that session lived, and every later run was skipped as still running."""
    monkeypatch.setattr(db, "LOCK_TIMEOUT_S", 1)  # read when the engine is made, by migrate below
    migrate(postgres_url)
    with session_scope(postgres_url) as session:
        session.add(BugReport(id="r1", content_hash="h1", text="checkout spins", category="checkout",
                              created_at=datetime(2025, 1, 6, tzinfo=UTC)))
    other_session = create_engine(postgres_url)  # PostgreSQL's defaults, like psql
    try:
        with other_session.connect() as holder, ThreadPoolExecutor(max_workers=1) as scheduler_thread:
            holder.execute(text("SELECT id FROM bug_reports WHERE id = 'r1' FOR UPDATE"))
            try:
                purge = scheduler_thread.submit(purge_expired_reports, 90, postgres_url)
                with pytest.raises(OperationalError) as gave_up:
                    purge.result(timeout=120)  # a safety net: unbounded, the purge waits for the holder's end
            finally:
                holder.rollback()
    finally:
        other_session.dispose()
    assert gave_up.value.orig.sqlstate == "55P03"  # lock_not_available
    assert purge_expired_reports(90, postgres_url) == 1  # the next night, the row free, the report goes
