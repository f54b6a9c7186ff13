"""Slack delivery ids are remembered long enough to drop retries, then forgotten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

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
