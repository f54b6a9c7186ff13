import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.jobs import WEEKLY_DIGESTS, build_scheduler, post_weekly_digest
from knowledge.claims import Claim
from knowledge.config import Settings
from knowledge.db import migrate, session_scope
from tools.reports.intake import bump_daily_counts


def test_two_replicas_post_the_weekly_digest_once(postgres_url: str) -> None:
    settings = Settings(database_url=postgres_url, digest_channel="C-DIGEST")
    migrate(postgres_url)
    with session_scope(postgres_url) as session:
        bump_daily_counts(session, Counter({(date(2025, 6, 3), "login"): 12, (date(2025, 6, 4), "crash"): 7}))
    posts: list[tuple[str, str, bytes | None]] = []
    barrier = threading.Barrier(2)

    def replica() -> bool:
        barrier.wait()
        return post_weekly_digest(lambda channel, text, blocks, png: posts.append((channel, text, png)), settings, today=date(2025, 6, 9))

    with ThreadPoolExecutor(max_workers=2) as replicas:
        outcomes = [replicas.submit(replica) for _ in range(2)]
        assert sorted(outcome.result() for outcome in outcomes) == [False, True]  # .result() re-raises a replica's error
    assert len(posts) == 1
    channel, text, png = posts[0]
    assert channel == "C-DIGEST" and "login: 12 reports" in text and png and png.startswith(b"\x89PNG")
    with session_scope(postgres_url) as session:
        run = session.scalars(select(Claim).where(Claim.scope == WEEKLY_DIGESTS)).one()
        assert (run.key, run.done_at is not None) == ("2025-W23:C-DIGEST", True)
    assert post_weekly_digest(lambda *args: posts.append(args), settings, today=date(2025, 6, 9)) is False


def test_digest_fires_monday_at_the_configured_hour_and_zone(data_dir: Path) -> None:
    scheduler = build_scheduler(lambda *args: None, Settings(data_dir=data_dir, digest_timezone="Europe/Paris"))
    trigger = scheduler.get_job("weekly_digest").trigger
    zone = ZoneInfo("Europe/Paris")
    fire = trigger.get_next_fire_time(None, datetime(2025, 6, 4, 12, tzinfo=zone))
    assert fire == datetime(2025, 6, 9, 9, tzinfo=zone) and fire.strftime("%A") == "Monday"
    assert {job.id for job in scheduler.get_jobs()} == {"weekly_digest", "report_alerts", "report_classification", "report_retention", "slack_delivery_retention", "model_retrain", "thread_retention", "auto_investigation_retention"}


def test_with_a_slack_client_the_scheduler_also_sends_unsent_answers(data_dir: Path) -> None:
    from slack_sdk import WebClient

    from bot.outbox import send_unsent_replies

    scheduler = build_scheduler(lambda *args: None, Settings(data_dir=data_dir), WebClient(token="xoxb-test"))
    job = scheduler.get_job("unsent_replies")
    assert job.func is send_unsent_replies and job.trigger.interval.total_seconds() == 30
    assert scheduler.get_job("unsent_replies_retention") is not None
