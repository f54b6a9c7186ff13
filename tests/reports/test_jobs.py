import threading
from collections import Counter
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.jobs import build_scheduler, post_weekly_digest
from knowledge.config import get_settings
from knowledge.db import migrate, session_scope
from knowledge.reports import DigestRun
from tools.reports.intake import bump_daily_counts


def test_two_replicas_post_the_weekly_digest_once(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CULPRIT_DIGEST_CHANNEL", "C-DIGEST")
    get_settings.cache_clear()
    migrate(postgres_url)
    with session_scope(postgres_url) as session:
        bump_daily_counts(session, Counter({(date(2025, 6, 3), "login"): 12, (date(2025, 6, 4), "crash"): 7}))
    posts: list[tuple[str, str, bytes | None]] = []
    barrier = threading.Barrier(2)

    def replica() -> None:
        barrier.wait()
        post_weekly_digest(lambda channel, text, blocks, png: posts.append((channel, text, png)), today=date(2025, 6, 9), url=postgres_url)

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(posts) == 1
    channel, text, png = posts[0]
    assert channel == "C-DIGEST" and "login: 12 reports" in text and png and png.startswith(b"\x89PNG")
    with session_scope(postgres_url) as session:
        run = session.scalars(select(DigestRun)).one()
        assert (run.iso_week, run.posted_at is not None) == ("2025-W23", True)
    assert post_weekly_digest(lambda *args: posts.append(args), today=date(2025, 6, 9), url=postgres_url) is False


def test_digest_fires_monday_at_the_configured_hour_and_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CULPRIT_DIGEST_TIMEZONE", "Europe/Paris")
    get_settings.cache_clear()
    scheduler = build_scheduler(lambda *args: None)
    trigger = scheduler.get_job("weekly_digest").trigger
    zone = ZoneInfo("Europe/Paris")
    fire = trigger.get_next_fire_time(None, datetime(2025, 6, 4, 12, tzinfo=zone))
    assert fire == datetime(2025, 6, 9, 9, tzinfo=zone) and fire.strftime("%A") == "Monday"
    assert {job.id for job in scheduler.get_jobs()} == {"weekly_digest", "report_alerts", "report_classification", "report_retention", "slack_delivery_retention"}
