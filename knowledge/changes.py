"""Code changes (commits or deploys) and the files they touch."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from knowledge.db import Base, UTCDateTime


class Change(Base):
    """One landed change; ``landed_time`` is when it reached the main line."""

    __tablename__ = "changes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    repo: Mapped[str] = mapped_column(String(200), index=True)
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    author_time: Mapped[datetime] = mapped_column(UTCDateTime)
    landed_time: Mapped[datetime] = mapped_column(UTCDateTime)
    landed_via_merge: Mapped[bool] = mapped_column(default=False)
    added: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    n_files: Mapped[int] = mapped_column(Integer, default=0)
    directories: Mapped[list[str]] = mapped_column(JSON, default=list)
    services: Mapped[list[str]] = mapped_column(JSON, default=list)

    files: Mapped[list[ChangeFile]] = relationship(
        back_populates="change", cascade="all, delete-orphan", order_by="ChangeFile.position"
    )

    __table_args__ = (Index("ix_changes_repo_landed", "repo", "landed_time"),)

    @property
    def paths(self) -> list[str]:
        return [file.path for file in self.files]


class ChangeFile(Base):
    """A file touched by a change with its line counts (None for binary files)."""

    __tablename__ = "change_files"

    change_id: Mapped[str] = mapped_column(
        ForeignKey("changes.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    added: Mapped[int | None] = mapped_column(Integer, nullable=True)
    deleted: Mapped[int | None] = mapped_column(Integer, nullable=True)

    change: Mapped[Change] = relationship(back_populates="files")


def changes_landed_between(
    session: Session, start: datetime, end: datetime, repo: str | None = None
) -> list[Change]:
    """Changes that landed in ``[start, end)``, newest first, with their files loaded."""
    from sqlalchemy.orm import selectinload

    query = (
        select(Change)
        .where(Change.landed_time >= start, Change.landed_time < end)
        .options(selectinload(Change.files))
        .order_by(Change.landed_time.desc())
    )
    if repo:
        query = query.where(Change.repo == repo)
    return list(session.scalars(query))


def existing_change_ids(session: Session, ids: list[str]) -> set[str]:
    """The subset of ``ids`` already stored, so ingestion can skip them."""
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update(session.scalars(select(Change.id).where(Change.id.in_(chunk))))
    return found
