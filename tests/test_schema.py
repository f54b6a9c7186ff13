"""The schema migrates on both engines and round-trips timezone-aware times."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, inspect, text

from knowledge.changes import Change, ChangeFile, changes_landed_between
from knowledge import db
from knowledge.db import DatabaseUnavailable, get_engine, migrate, session_scope, utcnow
from tests.bot.silent_database import SilentDatabase
from tests.schema_revisions import downgrade_to


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



def test_a_window_scoped_to_a_repository_keeps_change_events(database_url: str) -> None:
    """A deploy is stored under its source's name: an investigation scoped to one repository still sees it."""
    from tools.rca.store import window_changes

    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    with session_scope(database_url) as session:
        for hours, (change_id, repo, kind) in enumerate(
            [("shop1", "acme/shop", "commit"), ("web1", "acme/web", "commit"), ("deploy1", "argocd", "deploy")]
        ):
            session.add(Change(id=change_id, repo=repo, kind=kind, title=change_id,
                               author_time=start + timedelta(hours=hours), landed_time=start + timedelta(hours=hours)))
    end = start + timedelta(hours=5)
    with session_scope(database_url) as session:
        assert [c.id for c in changes_landed_between(session, start, end, "acme/shop")] == ["deploy1", "shop1"]
        assert [c.id for c in changes_landed_between(session, start, end)] == ["deploy1", "web1", "shop1"]
    assert [c.id for c in window_changes(database_url, start, end, "acme/shop")] == ["deploy1", "shop1"]

def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(DatabaseUnavailable, match="CULPRIT_DATABASE_URL"):
        migrate("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")


def test_a_server_that_never_answers_is_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a connect timeout libpq waits forever on a host that accepts and stays silent."""
    monkeypatch.setattr("knowledge.db.CONNECT_TIMEOUT_S", 1)
    with SilentDatabase() as database:
        with pytest.raises(DatabaseUnavailable, match="timeout"):
            migrate(database.url)
        database.wait_for_connections(1)  # the timeout came from a server that took the connection, not a refusal


def test_the_attribution_migration_keeps_stored_changes_and_their_files(database_url: str) -> None:
    """0005 adds columns in place: on SQLite a table rebuild would cascade-delete every change's files."""
    from alembic import command
    from sqlalchemy import text

    from knowledge.db import alembic_config

    engine = get_engine(database_url)
    with engine.connect() as connection:
        config = alembic_config(database_url)
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.commit()
        connection.execute(text(
            "INSERT INTO changes (id, repo, title, body, author, email, author_time, landed_time, landed_via_merge,"
            " added, deleted, n_files, directories, services) VALUES ('c1', 'acme/web', 't', '', '', '',"
            " '2026-03-01 12:00:00', '2026-03-01 12:00:00', false, 1, 0, 1, '[]', '[\"web\"]')"
        ))  # fmt: skip
        connection.execute(text("INSERT INTO change_files (change_id, position, path) VALUES ('c1', 0, 'src/a.py')"))
        connection.execute(text("INSERT INTO services (name, owner, description, path_globs, depends_on, source) "
                                "VALUES ('web', '', '', '[]', '[]', '')"))  # fmt: skip
        connection.commit()
    migrate(database_url)
    with session_scope(database_url) as session:
        change = session.get(Change, "c1")
        assert change is not None
        assert change.record().files == (("src/a.py", None, None),)
        assert change.record().services == ("web",) and change.record().dependant_services == ()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT kind FROM services")).scalar_one() == ""


def test_auto_investigations_claimed_before_leases_count_as_finished(database_url: str) -> None:
    """0011: before leases no auto-investigation claim was finished, though its first suspects were posted;
    left unfinished, one would be taken over and culprit would investigate an old incident channel again."""
    from knowledge.claims import Claim, is_done

    downgrade_to(database_url, "0010")
    long_ago = utcnow() - timedelta(days=30)
    with session_scope(database_url) as session:
        session.add(Claim(scope="auto_investigation", key="channel:COLDINC", holder="gone:1:x", claimed_at=long_ago))
        session.add(Claim(scope="weekly_digest", key="2026-W01:CDIGEST", holder="gone:1:x", claimed_at=long_ago))
    migrate(database_url)
    assert is_done("auto_investigation", "channel:COLDINC", database_url)
    assert not is_done("weekly_digest", "2026-W01:CDIGEST", database_url)  # other work keeps its lease


def test_labels_stored_before_their_origin_was_recorded_keep_what_can_be_told(database_url: str) -> None:
    """0012: a label unlike its report's category (or on one not classified yet) came with the report, as a
    relabel sets both; a label equal to the category could be either, so it stays without an origin."""
    from knowledge.reports import BugReport

    downgrade_to(database_url, "0011")
    insert = text(
        "INSERT INTO bug_reports (id, content_hash, text, source, created_at, ingested_at, label, category) "
        "VALUES (:id, :id, 'text', 'file', :at, :at, :label, :category)"
    )
    with get_engine(database_url).begin() as connection:
        for report_id, label, category in [("differs", "feed", "crash"), ("pending", "feed", None),
                                           ("same", "crash", "crash"), ("none", None, "crash")]:  # fmt: skip
            connection.execute(insert, {"id": report_id, "at": utcnow(), "label": label, "category": category})
    migrate(database_url)
    with session_scope(database_url) as session:
        origins = {report.id: report.label_origin for report in session.query(BugReport)}
    assert origins == {"differs": "report", "pending": "report", "same": None, "none": None}


def test_a_replica_waits_for_another_replicas_migration_past_the_lock_timeout(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot's sessions give up on a lock after LOCK_TIMEOUT_S; a replica starting while another migrates must
    not: it waits for the migration lock however long the migration takes, then finds the schema at head."""
    monkeypatch.setattr(db, "LOCK_TIMEOUT_S", 1)
    migrate(postgres_url)
    other_replica = create_engine(postgres_url)
    try:
        with other_replica.connect() as migrating, ThreadPoolExecutor(max_workers=1) as starting:
            migrating.execute(text("SELECT pg_advisory_lock(727274)"))
            try:
                started = starting.submit(migrate, postgres_url)
                waited = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'" \
                         " AND clock_timestamp() - query_start > interval '3 seconds'"
                while not migrating.execute(text(waited)).scalar() and not started.done():
                    threading.Event().wait(0.1)
                assert not started.done(), started.exception()  # still waiting, three lock timeouts later
            finally:
                migrating.execute(text("SELECT pg_advisory_unlock(727274)"))
                migrating.commit()
            started.result(timeout=120)  # a safety net
    finally:
        other_replica.dispose()


def test_a_lock_timeout_in_the_url_wins_and_its_other_options_stay(postgres_url: str) -> None:
    """The bot's sessions bound their lock waits unless the URL's ``options`` say otherwise."""
    for query, expected in (("", ("30s", '"$user", public')), ("?options=-c%20search_path%3Dpublic", ("30s", "public")),
                            ("?options=-c%20lock_timeout%3D5s", ("5s", '"$user", public'))):
        engine = get_engine(postgres_url + query)
        try:
            with engine.connect() as connection:
                assert (connection.execute(text("SHOW lock_timeout")).scalar(), connection.execute(text("SHOW search_path")).scalar()) == expected
        finally:
            engine.dispose()
