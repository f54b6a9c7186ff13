"""Answers Slack would not take, kept until they are delivered or too old to help.

During an incident Slack rate-limits a busy workspace; a reply still refused
after the Web client's retries is stored here and sent again by a scheduled
job, instead of leaving the responder with "Investigating…" for good. A row
holds what the message shows and where it goes, never a token or a
``response_url`` (a credential to post as the app): an answer that only a
``response_url`` could deliver is not kept. The caller stores the message
redacted (``bot.replies.kept_message``): an answer quotes the incident as sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, delete, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column

from knowledge.db import Base, UTCDateTime, session_scope, utcnow

UNSENT_TTL = timedelta(hours=1)  # an answer later than this is noise in a channel that has moved on
FORGET_AFTER = timedelta(days=1)


class UnsentReply(Base):
    """One answer to post (or to write over a placeholder) in a channel, and how delivering it went."""

    __tablename__ = "unsent_replies"
    __table_args__ = (Index("ix_unsent_replies_delivered_expires", "delivered_at", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(50))
    thread_ts: Mapped[str | None] = mapped_column(String(50), nullable=True)
    replace_ts: Mapped[str | None] = mapped_column(String(50), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    blocks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    incident_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(200), default="")
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


@dataclass(frozen=True)
class PendingReply:
    """An unsent answer as the delivering job needs it."""

    id: int
    channel: str
    thread_ts: str | None
    replace_ts: str | None
    text: str
    blocks: list[dict[str, Any]]
    incident_id: str | None
    attempts: int


def keep_unsent(
    url: str,
    *,
    channel: str,
    text: str,
    blocks: list[dict[str, Any]],
    thread_ts: str | None = None,
    replace_ts: str | None = None,
    incident_id: str | None = None,
    error: str = "",
    ttl: timedelta = UNSENT_TTL,
) -> int:
    """Store an answer Slack refused; returns its id."""
    now = utcnow()
    row = UnsentReply(
        channel=channel,
        thread_ts=thread_ts,
        replace_ts=replace_ts,
        text=text,
        blocks=blocks,
        incident_id=incident_id,
        created_at=now,
        expires_at=now + ttl,
        attempts=1,
        last_error=error[:200],
    )
    with session_scope(url) as session:
        session.add(row)
        session.flush()
        return row.id


def due_replies(url: str, limit: int = 50) -> list[PendingReply]:
    """Undelivered answers still worth posting, oldest first."""
    with session_scope(url) as session:
        rows = session.scalars(
            select(UnsentReply)
            .where(UnsentReply.delivered_at.is_(None), UnsentReply.expires_at > utcnow())
            .order_by(UnsentReply.id)
            .limit(limit)
        ).all()
        return [
            PendingReply(
                row.id, row.channel, row.thread_ts, row.replace_ts, row.text, list(row.blocks or []),
                row.incident_id, row.attempts,
            )
            for row in rows
        ]


def mark_delivered(reply_id: int, url: str) -> None:
    with session_scope(url) as session:
        session.execute(update(UnsentReply).where(UnsentReply.id == reply_id).values(delivered_at=utcnow()))


def note_failure(reply_id: int, error: str, url: str) -> None:
    """One more refused attempt, and why (Slack's error code, not the message)."""
    with session_scope(url) as session:
        session.execute(
            update(UnsentReply)
            .where(UnsentReply.id == reply_id)
            .values(attempts=UnsentReply.attempts + 1, last_error=error[:200])
        )


def give_up(reply_id: int, error: str, url: str) -> None:
    """Stop trying: Slack refused the answer for good (the channel is gone, the blocks are invalid)."""
    with session_scope(url) as session:
        session.execute(
            update(UnsentReply)
            .where(UnsentReply.id == reply_id)
            .values(attempts=UnsentReply.attempts + 1, last_error=error[:200], expires_at=utcnow())
        )


def forget_old_unsent(url: str, older_than: timedelta = FORGET_AFTER) -> int:
    """Drop answers delivered or expired more than ``older_than`` ago; returns how many."""
    before = utcnow() - older_than
    with session_scope(url) as session:
        result = session.execute(
            delete(UnsentReply).where(
                or_(UnsentReply.delivered_at < before, UnsentReply.expires_at < before)
            )
        )
        return int(result.rowcount or 0)
