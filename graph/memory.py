"""Thread memory: LangGraph checkpoints of each Slack thread's conversation, in culprit's own database.

A follow-up mention ("why #2?", "and in payments?") is answered with the
thread's earlier exchange in view: the mention agent runs with a checkpointer
keyed by ``channel:thread_ts`` and reads the thread's messages back from it.
SQLite URLs use ``SqliteSaver``, PostgreSQL URLs ``PostgresSaver``; both keep
their tables next to culprit's (``checkpoints``, ``writes`` / ``checkpoint_*``)
and create them with the saver's own ``setup()``, once per process and URL
(under an advisory lock on PostgreSQL, so replicas starting together do not
race). A connection is opened per conversation turn, so a restarted database
costs one failed answer, never a stuck saver.

Turns of one thread run one at a time (:func:`one_turn_at_a_time`): two
mentions answered together would both start from the same checkpoint and the
later write would drop the other's exchange from the thread.

A turn's checkpoint replaces the thread's earlier ones (:func:`keep_latest_only`), so a thread's rows
stay the size of its last turns however long it runs.

Threads expire: the nightly purge (``bot.jobs``) deletes every thread whose
newest checkpoint is older than the retention period.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timedelta

import structlog
from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy.engine import make_url

from knowledge.db import bounded_connect, utcnow

log = structlog.get_logger(__name__)

_SETUP_LOCK = threading.Lock()
_SET_UP: set[str] = set()
_ADVISORY_KEY = 727275  # knowledge.db's migrations hold 727274
_TURN_KEY = 727276  # with the thread's hash: one turn per thread across replicas


class _TurnLocks:
    """One lock per thread in this process, dropped when no turn holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, thread: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(thread, (threading.Lock(), 0))
            self._locks[thread] = (lock, users + 1)
        try:
            if not lock.acquire(blocking=False):
                log.info("waiting for the thread's earlier turn", thread=thread)
                lock.acquire()
            try:
                yield
            finally:
                lock.release()
        finally:
            with self._guard:
                users = self._locks[thread][1] - 1
                if users:
                    self._locks[thread] = (lock, users)
                else:
                    del self._locks[thread]


_TURNS = _TurnLocks()


@contextmanager
def one_turn_at_a_time(saver: BaseCheckpointSaver[str], thread: str) -> Iterator[None]:
    """Hold ``thread`` while a turn reads its checkpoint, runs and writes the next one.

    In this process a lock per thread; on PostgreSQL also an advisory lock on
    the saver's connection, so replicas answering the same thread queue too.
    """
    with _TURNS.hold(thread):
        conn = saver.conn  # type: ignore[attr-defined]
        if isinstance(conn, sqlite3.Connection):
            yield
            return
        held = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s)) AS held", (_TURN_KEY, thread)).fetchone()
        if not held["held"]:
            log.info("waiting for the thread's earlier turn", thread=thread)
            conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (_TURN_KEY, thread))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_TURN_KEY, thread))


def thread_id(channel: str, thread_ts: str) -> str:
    """The checkpointer's key for one Slack thread."""
    return f"{channel}:{thread_ts}"


@contextmanager
def open_saver(database_url: str) -> Iterator[BaseCheckpointSaver[str]]:
    """A checkpointer on culprit's database (SQLite file or PostgreSQL), its tables set up."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        # The saver serialises its own use of the connection with a lock; 30 s like culprit's engine.
        with closing(sqlite3.connect(url.database or ":memory:", check_same_thread=False, timeout=30)) as conn:
            saver = SqliteSaver(conn)
            saver.setup()
            yield saver
        return
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"thread memory needs SQLite or PostgreSQL, not {url.get_backend_name()}")
    from langgraph.checkpoint.postgres import PostgresSaver

    conninfo = bounded_connect(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with PostgresSaver.from_conn_string(conninfo) as saver:
        with _SETUP_LOCK:
            if database_url not in _SET_UP:
                saver.conn.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_KEY,))
                try:
                    saver.setup()
                finally:
                    saver.conn.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_KEY,))
                _SET_UP.add(database_url)
        yield saver


def keep_latest_only(saver: BaseCheckpointSaver[str], thread: str) -> None:
    """Delete the thread's checkpoints before its latest: each turn writes one holding the thread's last
    turns, and kept they grew a busy thread's rows by every turn ever asked until the thread went quiet.

    Only the latest is ever read (the agent keeps no history to replay)."""
    conn = saver.conn  # type: ignore[attr-defined]
    if not isinstance(conn, sqlite3.Connection):
        saver.prune([thread], strategy="keep_latest")
        return
    latest = saver.get_tuple({"configurable": {"thread_id": thread}})
    if latest is None:
        return
    kept = (thread, latest.config["configurable"]["checkpoint_id"])
    with saver.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute("DELETE FROM writes WHERE thread_id = ? AND checkpoint_id != ?", kept)
        cursor.execute("DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id != ?", kept)


def _thread_ids(saver: BaseCheckpointSaver[str]) -> list[str]:
    """Every thread with a checkpoint (both savers name the table ``checkpoints``)."""
    conn = saver.conn  # type: ignore[attr-defined]
    if isinstance(conn, sqlite3.Connection):
        with saver.cursor() as cursor:  # type: ignore[attr-defined]
            return [row[0] for row in cursor.execute("SELECT DISTINCT thread_id FROM checkpoints")]
    return [row["thread_id"] for row in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")]


def forget_old_threads(database_url: str, retention: timedelta, now: datetime | None = None) -> int:
    """Delete every thread whose newest checkpoint is older than ``retention``; returns how many went.

    Idempotent, so every replica may run it."""
    cutoff = (now or utcnow()) - retention
    forgotten = 0
    with open_saver(database_url) as saver:
        for thread in _thread_ids(saver):
            latest = saver.get_tuple({"configurable": {"thread_id": thread}})
            if latest is None or datetime.fromisoformat(latest.checkpoint["ts"]) < cutoff:
                saver.delete_thread(thread)
                forgotten += 1
    log.info("old threads forgotten", threads=forgotten, retention_days=retention.days)
    return forgotten
