"""Where the last ``ingest git`` of each repository's branch stopped, so the next one starts there.

A poll with nothing new then costs a few ``git`` calls and one row, whatever the
size of the history. The row also says which ``since`` the stored changes cover
and how many there are, so a later run can tell whether it may start from the
tip and report what is already present without reading it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from knowledge.db import Base, UTCDateTime, utcnow


MAX_BRANCH_CHARS = 255


class IngestedTip(Base):
    """The newest commit of a branch whose changes are all stored (those landed since ``since``)."""

    __tablename__ = "ingested_tips"

    repo: Mapped[str] = mapped_column(String(200), primary_key=True)
    branch: Mapped[str] = mapped_column(String(MAX_BRANCH_CHARS), primary_key=True)
    tip: Mapped[str] = mapped_column(String(64))
    since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    changes: Mapped[int] = mapped_column(Integer)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


@dataclass(frozen=True)
class Tip:
    """What an earlier ingest of a branch covered: every change up to ``sha`` landed since ``since``."""

    sha: str
    since: datetime | None
    changes: int


def remembered_tip(session: Session, repo: str, branch: str) -> Tip | None:
    row = session.get(IngestedTip, (repo, branch))
    return Tip(row.tip, row.since, row.changes) if row else None


def remember_tip(session: Session, repo: str, branch: str, tip: Tip) -> None:
    session.merge(IngestedTip(repo=repo, branch=branch, tip=tip.sha, since=tip.since, changes=tip.changes))
