"""Engine, sessions and schema migrations.

SQLite is the embedded default and PostgreSQL is chosen by URL; both run the
same Alembic migrations so a test against one speaks for the other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import URL, DateTime, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from knowledge.errors import CulpritError, mask_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
CONNECT_TIMEOUT_S = 10
# How long a PostgreSQL statement waits for a lock another session holds (a row, a table) before it fails with
# SQLSTATE 55P03; as long as SQLite's busy timeout. PostgreSQL's default is to wait forever.
LOCK_TIMEOUT_S = 30


class DatabaseUnavailable(CulpritError):
    """The configured database cannot be reached; the message says which URL and why."""


# What "the database is unreachable right now" raises, whichever layer meets it: a refused or
# dropped connection, a pool with no connection free. HTTP answers it with 503 so the sender retries.
UNREACHABLE = (DatabaseUnavailable, OperationalError, InterfaceError, PoolTimeout)
# Work with no sender to retry it (a Slack message or event) tries again after these while the database is
# UNREACHABLE: a database restarting or failing over is back within them.
RETRY_DELAYS_S = (1.0, 5.0, 30.0)
T = TypeVar("T")


def retry_while_unreachable(
    step: Callable[[], T],
    delays: Sequence[float],
    stopping: threading.Event,
    on_retry: Callable[[int, float, Exception], object],
    wait: Callable[[float], object] | None = None,
) -> T:
    """What ``step`` returns, trying it again after each of ``delays`` while it raises :data:`UNREACHABLE`.

    For work with no sender to retry it: ``on_retry(attempt, delay, error)``
    reports each failed try before its wait (``wait`` sleeps it; by default
    until ``stopping`` is set). Once ``stopping`` is set the waits are over:
    the process is going away, so one last try is made at once. The last
    try's error, whatever it is, is the caller's to handle.
    """
    for attempt, delay in enumerate(delays, start=1):
        if stopping.is_set():
            break
        try:
            return step()
        except UNREACHABLE as error:
            on_retry(attempt, delay, error)
        (wait or stopping.wait)(delay)
    return step()


def database_failure(error: BaseException) -> str:
    """What failed, for the log: the error's type, the driver's and the SQLSTATE, never their messages.

    A driver's message names the database's host, port, user and name, and echoes the values a constraint
    refused (``Key (email)=(...)``); SQLAlchemy's adds every parameter of the statement: a report's text,
    a person's name or e-mail, a token.
    """
    if _is_driver_error(error):  # raised by code on the driver itself (thread memory's checkpointers)
        return _driver_failure(error)
    cause = getattr(error, "orig", None)
    if cause is None:
        return type(error).__name__
    return f"{type(error).__name__} ({_driver_failure(cause)})"


def _driver_failure(error: BaseException) -> str:
    sqlstate, sqlite_code = getattr(error, "sqlstate", None), getattr(error, "sqlite_errorname", None)
    code = f", SQLSTATE {sqlstate}" if sqlstate else f", {sqlite_code}" if sqlite_code else ""
    return f"{type(error).__module__}.{type(error).__name__}{code}"


# The drivers culprit's databases are reached with: SQLAlchemy wraps their errors, LangGraph's savers do not.
_DRIVERS = frozenset({"psycopg", "sqlite3"})


def _is_driver_error(error: BaseException) -> bool:
    return type(error).__module__.split(".")[0] in _DRIVERS


def failure_fields(error: BaseException) -> dict[str, Any]:
    """Log fields for an unexpected ``error``: its traceback, unless a database error is in its chain.

    A traceback ends in each chained error's message, and a database error's holds the statement's
    parameters (:func:`database_failure`): that one is logged by type and SQLSTATE alone, whether
    SQLAlchemy raised it or the driver did (the thread memory's checkpointers use the driver directly).
    """
    found = _database_error_in(error)
    return {"error": database_failure(found)} if found is not None else {"exc_info": error}


def failure_reason(error: BaseException) -> str:
    """Why something failed, for people (an answer's note posted to a channel): a database error by type
    and SQLSTATE alone, as in the log, any other by its type and message with URL passwords masked (a signal's
    call to another server may quote the URL it called)."""
    found = _database_error_in(error)
    return database_failure(found) if found is not None else f"{type(error).__name__}: {mask_url(str(error))}"


def is_database_error(error: BaseException) -> bool:
    """Whether ``error`` is SQLAlchemy's or a driver's: its message may hold the values of a row or a statement."""
    return isinstance(error, SQLAlchemyError) or _is_driver_error(error)


def _database_error_in(error: BaseException) -> BaseException | None:
    link: BaseException | None = error
    while link is not None:
        if is_database_error(link):
            return link
        link = link.__cause__ or link.__context__
    return None


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always returned timezone-aware.

    SQLite drops the offset, so naive values coming back are UTC by construction.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base for every culprit table."""


def _enable_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per URL for the life of the process.

    ``hide_parameters``: a statement's error would otherwise carry every value it sent (a report's text, a
    person's name) into whatever logs it, APScheduler's and Bolt's tracebacks included.
    On PostgreSQL lock waits are bounded (:func:`bounded_lock_waits`).
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _enable_sqlite_pragmas)
    else:
        engine = create_engine(
            bounded_connect(url), connect_args=bounded_lock_waits(make_url(url)),
            pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True,
        )  # fmt: skip
    return engine


def bounded_lock_waits(url: URL) -> dict[str, str]:
    """Connect args that give each PostgreSQL session a ``lock_timeout`` of :data:`LOCK_TIMEOUT_S`.

    PostgreSQL waits for a lock forever by default: a scheduled job (or a request) writing a row that another
    session holds (a psql transaction left open, a replica frozen mid-transaction) would hold its thread until
    that session ends, and a job's every later run would be skipped as still running. A ``lock_timeout`` in the
    URL's ``options`` wins; other ``options`` are kept.
    """
    options = " ".join(url.normalized_query.get("options", ()))
    if "lock_timeout" in options:
        return {}
    return {"options": f"{options} -c lock_timeout={LOCK_TIMEOUT_S * 1000}".strip()}


def bounded_connect(url: str) -> URL:
    """The URL with a PostgreSQL connect timeout, because libpq waits forever by default.

    A server that accepts the TCP connection and never answers (a hung host,
    a half-open load balancer) would otherwise hold every thread that asks for
    a connection, health checks included. A ``connect_timeout`` in the URL wins.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or "connect_timeout" in parsed.query:
        return parsed
    return parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_S)})


@lru_cache(maxsize=8)
def _session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = _session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Any:
    """An Alembic config pointing at the packaged migrations, usable without alembic.ini."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Bring the schema to the newest revision.

    On PostgreSQL an advisory lock serialises replicas that start together, so
    only one of them runs each migration; waiting for it (another replica migrating) and a migration's own
    locks are not bounded by :data:`LOCK_TIMEOUT_S`.
    """
    from alembic import command

    engine = get_engine(url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SET LOCAL lock_timeout = 0"))  # until the migration's commit
                connection.execute(text("SELECT pg_advisory_lock(727274)"))
            try:
                config = alembic_config(url)
                config.attributes["connection"] = connection
                if not _at_head(connection, config):
                    command.upgrade(config, "head")
                    connection.commit()
            finally:
                if engine.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_unlock(727274)"))
                    connection.commit()
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0]
        raise DatabaseUnavailable(
            f"cannot reach the database at {engine.url!r} ({reason}); "
            "check CULPRIT_DATABASE_URL and that the server is running"
        ) from error


def _at_head(connection: Any, config: Any) -> bool:
    """True when the store already has every revision: then migrating loads nothing more,
    which is most of an idle command's start (env.py imports every model)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    current = set(MigrationContext.configure(connection).get_current_heads())
    return current == set(ScriptDirectory.from_config(config).get_heads())


def utcnow() -> datetime:
    return datetime.now(UTC)


def unstorable(text: str) -> str | None:
    """Why no database stores ``text``, or None when one does.

    PostgreSQL refuses a NUL in text, and no database stores a lone UTF-16
    surrogate (JSON lets a sender write ``\\ud800``; it is not UTF-8). Checked
    where text arrives, so it is refused with its field's name instead of
    failing an insert, or an investigation already announced, later.
    """
    if "\x00" in text:
        return "holds a NUL character (\\u0000)"
    if not text.isascii() and any("\ud800" <= char <= "\udfff" for char in text):
        return "holds a lone surrogate such as \\ud800 (not valid Unicode)"
    return None


def storable(text: str) -> str:
    """``text`` with what :func:`unstorable` refuses taken out (NULs dropped, lone surrogates as U+FFFD), for
    text that has no sender to refuse it to (a Slack message, a channel's topic) and must not be lost for it."""
    if text.isascii():
        return text.replace("\x00", "")
    return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text if char != "\x00")
