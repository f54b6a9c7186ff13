"""The schema migrates on both engines and round-trips timezone-aware times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect

from knowledge.changes import Change, ChangeFile, changes_landed_between
from knowledge.db import DatabaseUnavailable, get_engine, migrate, session_scope


def test_migrations_create_every_table_and_are_repeatable(database_url: str) -> None:
    migrate(database_url)  # a second run is a no-op
    tables = set(inspect(get_engine(database_url)).get_table_names())
    assert {"changes", "change_files", "incidents", "suggestions", "feedback", "bug_reports",
            "categories", "category_daily", "services", "ownership_rules", "claims"} <= tables


def test_landed_window_query_returns_newest_first_with_files(database_url: str) -> None:
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    with session_scope(database_url) as session:
        for hours in range(5):
            change = Change(
                id=f"c{hours}", repo="acme/web", title=f"change {hours}",
                author_time=start + timedelta(hours=hours),
                landed_time=start + timedelta(hours=hours),
            )
            change.files = [ChangeFile(position=0, path=f"src/m{hours}.py", added=hours, deleted=0)]
            session.add(change)
    with session_scope(database_url) as session:
        found = changes_landed_between(session, start + timedelta(hours=1), start + timedelta(hours=4))
        assert [change.id for change in found] == ["c3", "c2", "c1"]
        assert found[0].record().files == (("src/m3.py", 3, 0),)
        assert found[0].landed_time.tzinfo is not None
        assert found[0].landed_time == start + timedelta(hours=3)


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(DatabaseUnavailable, match="CULPRIT_DATABASE_URL"):
        migrate("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
