"""Claims that only stop a repeat (Slack delivery ids, auto-investigations) are remembered long enough
to drop retries, then forgotten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.auto_investigations import AUTO_INVESTIGATIONS, forget_old_investigations
from knowledge.claims import Claim
from knowledge.db import session_scope
from knowledge.incidents import SLACK_DELIVERIES, forget_old_deliveries


def test_only_deliveries_older_than_a_week_are_forgotten(database_url: str) -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    with session_scope(database_url) as session:
        session.add(Claim(scope=SLACK_DELIVERIES, key="Ev-old", claimed_at=now - timedelta(days=8)))
        session.add(Claim(scope=SLACK_DELIVERIES, key="Ev-recent", claimed_at=now - timedelta(days=6)))
        session.add(Claim(scope="weekly_digest", key="2026-W40:CDIGEST", claimed_at=now - timedelta(days=60)))

    assert forget_old_deliveries(database_url, now=now) == 1

    with session_scope(database_url) as session:
        assert list(session.scalars(select(Claim.key).order_by(Claim.key))) == ["2026-W40:CDIGEST", "Ev-recent"]


def test_auto_investigation_claims_are_forgotten_after_ninety_days_finished_or_not(database_url: str) -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    with session_scope(database_url) as session:
        for key, age, finished in (("channel:C-OLD", 91, True), ("pagerduty:P-DEAD", 95, False),
                                   ("incident:recent", 89, True), ("channel:C-NEW", 0, False)):  # fmt: skip
            claimed_at = now - timedelta(days=age)
            session.add(Claim(scope=AUTO_INVESTIGATIONS, key=key, claimed_at=claimed_at,
                              done_at=claimed_at if finished else None))  # fmt: skip
        session.add(Claim(scope=SLACK_DELIVERIES, key="Ev-recent", claimed_at=now - timedelta(days=1)))
        session.add(Claim(scope="weekly_digest", key="2026-W10:CDIGEST", claimed_at=now - timedelta(days=260)))

    assert forget_old_investigations(database_url, now=now) == 2

    with session_scope(database_url) as session:
        assert list(session.scalars(select(Claim.key).order_by(Claim.key))) == [
            "2026-W10:CDIGEST", "Ev-recent", "channel:C-NEW", "incident:recent",
        ]  # fmt: skip
