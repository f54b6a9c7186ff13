"""User bug reports, their categories and the long-retention daily counts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from knowledge.db import Base, UTCDateTime, utcnow


class BugReport(Base):
    """One user report; ``text`` is already redacted. Raw rows expire, daily counts stay.

    ``label`` is a human's category (from a labeled file or ``culprit reports
    relabel``): labeled reports feed the next ``culprit reports train``.
    ``label_origin`` says which: ``report`` (it came with the report, see
    ``source``) or ``responder`` (relabeled); None for labels stored before it
    was recorded.
    """

    __tablename__ = "bug_reports"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(50), default="file")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    label_origin: Mapped[str | None] = mapped_column(String(20), nullable=True)
    category: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    # JSON text: {"neighbours": [{text, category, similarity}], "words": [{term, weight}]} (see tools.reports.classifiers)
    why: Mapped[str | None] = mapped_column(Text, nullable=True)


class Category(Base):
    """An expert-defined or discovered category; ``parent`` builds the hierarchy."""

    __tablename__ = "categories"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    examples: Mapped[list[str]] = mapped_column(JSON, default=list)
    parent: Mapped[str | None] = mapped_column(String(200), nullable=True)
    origin: Mapped[str] = mapped_column(String(50), default="expert")


class CategoryDaily(Base):
    """Reports per category per day: kept for years after the raw reports are purged."""

    __tablename__ = "category_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    category: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class Alert(Base):
    """A spike or data-quality alert; one row per episode so it posts once while it lasts (an ``alert`` claim)."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("kind", "key", "started_on", name="uq_alert_episode"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(50))
    key: Mapped[str] = mapped_column(String(200))
    started_on: Mapped[date] = mapped_column(Date)
    last_seen_on: Mapped[date] = mapped_column(Date)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
