"""Claims: the right to do one keyed piece of work, won by exactly one caller across processes and replicas.

Every replica answers the same Slack retries, fires the same scheduled jobs and
sees the same alerts; the database decides which one acts. A claim is a row
keyed on (scope, key): the first insert wins and every later one fails on the
primary key, on SQLite and PostgreSQL alike. Work that must not be lost when
its holder dies (a weekly digest) claims with a lease: an unfinished claim
whose holder's process is gone, or whose lease ran out, is taken over by one
caller, by a conditional update on the holder it saw.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Index, String, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from knowledge.db import Base, UTCDateTime, session_scope, utcnow

log = structlog.get_logger(__name__)

# host:pid:nonce, so a restarted container whose process has the same pid is still a new holder.
THIS_PROCESS = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Claim(Base):
    """Who holds the right to one piece of work, since when, and whether it is done."""

    __tablename__ = "claims"
    __table_args__ = (Index("ix_claims_scope_claimed_at", "scope", "claimed_at"),)

    scope: Mapped[str] = mapped_column(String(50), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), default="")
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def claim(
    scope: str,
    key: str,
    url: str,
    *,
    holder: str = THIS_PROCESS,
    lease: timedelta | None = None,
) -> bool:
    """True for exactly one caller per (scope, key).

    Without a lease a claim is forever (until forgotten). With one, an unfinished
    claim whose holder is gone or whose lease ran out goes to one later caller.
    """
    try:
        with session_scope(url) as session:
            session.add(Claim(scope=scope, key=key, holder=holder))
    except IntegrityError:
        return lease is not None and _take_over(scope, key, holder, lease, url)
    return True


def finish(scope: str, key: str, url: str) -> None:
    """Mark the claimed work done, so no one takes it over."""
    with session_scope(url) as session:
        session.execute(
            update(Claim).where(Claim.scope == scope, Claim.key == key).values(done_at=utcnow())
        )


def release(scope: str, key: str, url: str, *, holder: str = THIS_PROCESS) -> bool:
    """Give back an unfinished claim this holder made (its work failed and should be tried again)."""
    with session_scope(url) as session:
        result = session.execute(
            delete(Claim).where(
                Claim.scope == scope, Claim.key == key, Claim.holder == holder, Claim.done_at.is_(None)
            )
        )
        return bool(result.rowcount)


def is_done(scope: str, key: str, url: str) -> bool:
    with session_scope(url) as session:
        found = session.get(Claim, (scope, key))
        return found is not None and found.done_at is not None


def forget(scopes: Iterable[str], before: datetime, url: str) -> int:
    """Drop claims made before ``before`` in the given scopes; returns how many."""
    with session_scope(url) as session:
        result = session.execute(delete(Claim).where(Claim.scope.in_(list(scopes)), Claim.claimed_at < before))
        return int(result.rowcount or 0)


def _take_over(scope: str, key: str, holder: str, lease: timedelta, url: str) -> bool:
    with session_scope(url) as session:
        held = session.get(Claim, (scope, key))
        if held is None or held.done_at is not None:
            return False
        if not (holder_is_gone(held.holder) or held.claimed_at < utcnow() - lease):
            return False
        # Matching the holder seen above lets only one of several takers win.
        taken = session.execute(
            update(Claim)
            .where(Claim.scope == scope, Claim.key == key, Claim.holder == held.holder, Claim.done_at.is_(None))
            .values(holder=holder, claimed_at=utcnow())
        ).rowcount
    if taken:
        log.warning("took over an unfinished claim", scope=scope, key=key, dead_holder=held.holder)
    return taken == 1


def holder_is_gone(holder: str) -> bool:
    """True when the claim was made on this host by a process that no longer runs."""
    host, _, rest = holder.partition(":")
    pid, _, _nonce = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit() or holder == THIS_PROCESS:
        return False
    if int(pid) == os.getpid():
        return True  # an earlier life of this pid: the container restarted
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
