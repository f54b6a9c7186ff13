"""Claims: one winner per keyed piece of work, however many replicas race for it, and recovery from a dead holder."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import bindparam, select, text

from knowledge.claims import Claim, claim, finish, forget, holder_is_gone, is_done
from knowledge.db import UTCDateTime, alembic_config, get_engine, session_scope, utcnow
from tools.reports.spikes import unposted_alerts

LEASE = timedelta(minutes=15)
RACERS = 8


def race(database_url: str, scope: str, key: str, lease: timedelta | None = None) -> list[str]:
    """Several replicas claim the same key at the same instant; returns the holders that won."""
    start = threading.Barrier(RACERS)

    def replica(number: int) -> str | None:
        me = f"replica-{number}:{number}:nonce"
        start.wait()
        won = claim(scope, key, database_url, holder=me, lease=lease)
        with session_scope(database_url) as session:
            holder = session.get(Claim, (scope, key)).holder
        if won:
            assert holder == me, f"{me} won the claim but the row says {holder}"
        return me if won else None

    with ThreadPoolExecutor(max_workers=RACERS) as replicas:
        outcomes = [replicas.submit(replica, number) for number in range(RACERS)]
        # .result() re-raises what a replica raised, assertions included.
        return [winner for outcome in outcomes if (winner := outcome.result()) is not None]


def left_behind(database_url: str, scope: str, key: str, holder: str, age: timedelta) -> None:
    with session_scope(database_url) as session:
        session.add(Claim(scope=scope, key=key, holder=holder, claimed_at=utcnow() - age))


def dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(finished.stdout)


def test_replicas_racing_for_one_key_leave_exactly_one_winner(database_url: str) -> None:
    winners = race(database_url, "weekly_digest", "2026-W48:CDIGEST")
    assert len(winners) == 1
    # Later callers lose too, and another key is a separate piece of work.
    assert claim("weekly_digest", "2026-W48:CDIGEST", database_url, holder="late") is False
    assert claim("weekly_digest", "2026-W49:CDIGEST", database_url, holder="late") is True


def test_an_expired_lease_is_taken_over_by_exactly_one_replica(database_url: str) -> None:
    left_behind(database_url, "weekly_digest", "2026-W48:CDIGEST", "other-host:1:cafe", age=LEASE + timedelta(minutes=1))
    winners = race(database_url, "weekly_digest", "2026-W48:CDIGEST", lease=LEASE)
    assert len(winners) == 1
    with session_scope(database_url) as session:
        held = session.get(Claim, ("weekly_digest", "2026-W48:CDIGEST"))
        assert held.holder == winners[0]
        assert held.claimed_at > utcnow() - timedelta(minutes=1)


def test_a_live_holder_keeps_its_claim_until_its_lease_runs_out(database_url: str) -> None:
    left_behind(database_url, "weekly_digest", "2026-W48:CDIGEST", "other-host:1:cafe", age=LEASE - timedelta(minutes=1))
    assert claim("weekly_digest", "2026-W48:CDIGEST", database_url, holder="me", lease=LEASE) is False
    # Without a lease nothing is ever taken over, however old.
    left_behind(database_url, "alert", "7", "other-host:1:cafe", age=timedelta(days=30))
    assert claim("alert", "7", database_url, holder="me") is False


def test_a_holder_whose_process_is_gone_from_this_host_is_taken_over_at_once(database_url: str) -> None:
    dead = f"{socket.gethostname()}:{dead_pid()}:deadbeef"
    assert holder_is_gone(dead) and not holder_is_gone(f"{socket.gethostname()}:1:init")
    left_behind(database_url, "weekly_digest", "2026-W48:CDIGEST", dead, age=timedelta(seconds=5))
    assert claim("weekly_digest", "2026-W48:CDIGEST", database_url, holder="me", lease=LEASE) is True
    assert claim("weekly_digest", "2026-W48:CDIGEST", database_url, holder="someone-else", lease=LEASE) is False


def test_finished_work_is_never_taken_over(database_url: str) -> None:
    dead = f"{socket.gethostname()}:{dead_pid()}:deadbeef"
    left_behind(database_url, "weekly_digest", "2026-W48:CDIGEST", dead, age=LEASE * 2)
    assert not is_done("weekly_digest", "2026-W48:CDIGEST", database_url)
    finish("weekly_digest", "2026-W48:CDIGEST", database_url)
    assert is_done("weekly_digest", "2026-W48:CDIGEST", database_url)
    assert claim("weekly_digest", "2026-W48:CDIGEST", database_url, holder="me", lease=LEASE) is False


def test_forgetting_drops_only_old_claims_of_the_given_scopes(database_url: str) -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    with session_scope(database_url) as session:
        session.add(Claim(scope="slack_delivery", key="Ev-old", claimed_at=now - timedelta(days=8)))
        session.add(Claim(scope="slack_delivery", key="Ev-new", claimed_at=now - timedelta(days=1)))
        session.add(Claim(scope="alert", key="3", claimed_at=now - timedelta(days=8)))
    assert forget(["slack_delivery"], now - timedelta(days=7), database_url) == 1
    assert claim("slack_delivery", "Ev-old", database_url) is True
    assert claim("slack_delivery", "Ev-new", database_url) is False
    assert claim("alert", "3", database_url) is False


def test_the_migration_carries_deliveries_digests_and_posted_alerts_into_claims(database_url: str) -> None:
    config = alembic_config(database_url)
    command.downgrade(config, "0001")
    posted = datetime(2026, 11, 23, 9, tzinfo=UTC)
    legacy = [
        "INSERT INTO slack_deliveries VALUES ('EvOLD1', 'event', :at)",
        "INSERT INTO digest_runs VALUES ('2026-W47', 'CDIGEST', :at, 'host:12:ab', :at)",
        "INSERT INTO alerts (id, kind, key, started_on, last_seen_on, details, posted_at) VALUES "
        "(1, 'spike', 'login', '2026-11-20', '2026-11-21', '{}', :at), "
        "(2, 'spike', 'crash', '2026-11-22', '2026-11-22', '{}', NULL)",
    ]
    with get_engine(database_url).begin() as connection:
        for statement in legacy:
            connection.execute(text(statement).bindparams(bindparam("at", type_=UTCDateTime())), {"at": posted})
    command.upgrade(config, "head")

    with session_scope(database_url) as session:
        claims = {(c.scope, c.key): (c.holder, c.claimed_at, c.done_at) for c in session.scalars(select(Claim))}
    assert claims == {
        ("slack_delivery", "EvOLD1"): ("", posted, None),
        ("weekly_digest", "2026-W47:CDIGEST"): ("host:12:ab", posted, posted),
        ("alert", "1"): ("", posted, posted),
    }
    assert [alert.id for alert in unposted_alerts(database_url)] == [2]
