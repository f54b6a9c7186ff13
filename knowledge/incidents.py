"""Incidents, the suggestions culprit made for them, feedback, and confirmed root causes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from knowledge.claims import forget
from knowledge.db import Base, UTCDateTime, utcnow


# What a re-run of an auto-investigation appends to the incident's first description: the channel's messages
# since, which name suspects and fixes found later (``bot.auto_investigations``).
SO_FAR = "\n\nThe channel so far:\n"


def first_description(text: str) -> str:
    """The incident as described at its start, without the channel's later messages a re-run appended."""
    return text.split(SO_FAR, 1)[0]


class Incident(Base):
    """Something broke; ``started_at`` bounds which changes can be the cause."""

    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    service: Mapped[str | None] = mapped_column(String(200), nullable=True)
    repo: Mapped[str | None] = mapped_column(String(200), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    channel: Mapped[str | None] = mapped_column(String(100), nullable=True)
    thread_ts: Mapped[str | None] = mapped_column(String(50), nullable=True)
    source: Mapped[str] = mapped_column(String(50), default="slack")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    suggestions: Mapped[list[Suggestion]] = relationship(
        back_populates="incident", cascade="all, delete-orphan", order_by="Suggestion.rank"
    )
    root_causes: Mapped[list[RootCause]] = relationship(
        back_populates="incident", cascade="all, delete-orphan"
    )


class RootCause(Base):
    """A change confirmed as the cause of an incident: from history, feedback or a postmortem."""

    __tablename__ = "root_causes"

    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    change_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(50), default="history")
    confirmed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    incident: Mapped[Incident] = relationship(back_populates="root_causes")


class Suggestion(Base):
    """A change culprit proposed for an incident, with the evidence a responder can check."""

    __tablename__ = "suggestions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    change_id: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    judge: Mapped[str] = mapped_column(String(50), default="local")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    incident: Mapped[Incident] = relationship(back_populates="suggestions")
    feedback: Mapped[list[Feedback]] = relationship(
        back_populates="suggestion", cascade="all, delete-orphan"
    )


class Feedback(Base):
    """A responder's thumbs up (+1) or down (-1) on one suggestion; one vote per user."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("suggestion_id", "user_id", name="uq_feedback_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    suggestion_id: Mapped[int] = mapped_column(ForeignKey("suggestions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(100))
    vote: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    suggestion: Mapped[Suggestion] = relationship(back_populates="feedback")


# Claims on Slack delivery ids (``event_id``, or a slash command's ``cmd-`` hash), so retries are answered once.
SLACK_DELIVERIES = "slack_delivery"
DELIVERY_MEMORY = timedelta(days=7)


def forget_old_deliveries(url: str, now: datetime | None = None) -> int:
    """Drop delivery ids older than Slack's retry horizon (minutes) with a wide margin; returns how many."""
    return forget([SLACK_DELIVERIES], (now or utcnow()) - DELIVERY_MEMORY, url)
