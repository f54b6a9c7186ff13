"""The audit trail of root-cause confirmations, and the versions of the trained ranker.

A ``RootCause`` row says what is confirmed now; a ``CauseEvent`` says who
confirmed or retracted it, on what authority and when, so every training label
can be traced to a person (or to two agreeing votes) and undone. A
``ModelVersion`` row is one trained ranker file in the data directory with the
figures it was judged on; at most one is the champion that every replica uses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from knowledge.db import Base, UTCDateTime, utcnow

CONFIRM = "confirm"
RETRACT = "retract"


class CauseEvent(Base):
    """One confirmation or retraction of a change as an incident's root cause (append-only)."""

    __tablename__ = "root_cause_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    change_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200))
    authority: Mapped[str] = mapped_column(String(50))
    suggestion_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    undoes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModelVersion(Base):
    """One trained ranker: its file, what it learned from, how it replayed, and whether it serves."""

    __tablename__ = "model_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    trained_until: Mapped[float] = mapped_column(default=0.0)
    n_cases: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="challenger")
    champion: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    note: Mapped[str] = mapped_column(Text, default="")
