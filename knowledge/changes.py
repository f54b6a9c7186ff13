"""Changes (commits, and change events: deploys, flag flips, config pushes, infrastructure changes) and the files they touch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, Select, String, Text, false, or_, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from knowledge.db import Base, UTCDateTime

FileStat = tuple[str, int | None, int | None]
"""A touched file: path, lines added, lines deleted (None for binary files)."""

CHANGE_KINDS = ("commit", "deploy", "flag", "config", "infra")
"""What a change can be: a commit, or an event from a deploy pipeline, flag service or config system."""


@dataclass(frozen=True, kw_only=True)
class ChangeRecord:
    """One landed change as every layer passes it around, from ingestion to the answer.

    Whatever describes a change (a history file, ``git log``, a stored row) turns
    into this once, so the signals see the same values whichever way it came in.
    ``services`` are the services whose code it touched and
    ``dependant_services`` those reached through a shared library it touched,
    both from ``knowledge.attribution`` (empty until a catalog is ingested).
    """

    id: str
    repo: str
    title: str
    body: str = ""
    author: str = ""
    email: str = ""
    author_time: datetime
    landed_time: datetime
    landed_via_merge: bool = False
    files: tuple[FileStat, ...] = ()
    n_files: int = 0
    added: int = 0
    deleted: int = 0
    directories: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    kind: str = "commit"
    link: str = ""
    environment: str = ""
    version: str = ""
    carries: tuple[str, ...] = ()
    dependant_services: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    """The functions its hunks touched, from git's hunk headers (``knowledge.ingest.patch_names``)."""
    identifiers: tuple[str, ...] = ()
    """Code names (``Curl_http_done``, ``CURLE_OK``) on its added lines but not its removed ones, or the reverse."""
    partial: bool = False
    """Known only from a webhook payload (no line counts yet): the next poll of its repository completes it."""

    @cached_property
    def paths(self) -> tuple[str, ...]:
        """Kept once computed: every signal reads it for every candidate of every incident."""
        return tuple(path for path, _added, _deleted in self.files)


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
    kind: Mapped[str] = mapped_column(String(20), default="commit", server_default="commit")
    link: Mapped[str] = mapped_column(Text, default="", server_default="")
    environment: Mapped[str] = mapped_column(String(100), default="", server_default="")
    version: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # The commits a deploy carried (ids of changes), so an answer naming the deploy can name them too.
    carries: Mapped[list[str] | None] = mapped_column(JSON, default=list, nullable=True)
    partial: Mapped[bool] = mapped_column(default=False, server_default=false())
    dependant_services: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    # Read from the patch by ``ingest git`` (None: stored before they were read, or not a commit); None is
    # SQL NULL, not JSON null, so ``IS NULL`` finds the changes ``culprit ingest names`` has to read.
    functions: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    identifiers: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), nullable=True)

    files: Mapped[list[ChangeFile]] = relationship(
        back_populates="change", cascade="all, delete-orphan", order_by="ChangeFile.position"
    )

    __table_args__ = (Index("ix_changes_repo_landed", "repo", "landed_time"),)

    def record(self) -> ChangeRecord:
        """The row as the rest of the code sees a change (its files must be loaded)."""
        return ChangeRecord(
            id=self.id,
            repo=self.repo,
            title=self.title,
            body=self.body or "",
            author=self.author or "",
            email=self.email or "",
            author_time=self.author_time,
            landed_time=self.landed_time,
            landed_via_merge=self.landed_via_merge,
            files=tuple((file.path, file.added, file.deleted) for file in self.files),
            n_files=self.n_files,
            added=self.added or 0,
            deleted=self.deleted or 0,
            directories=tuple(self.directories or ()),
            services=tuple(self.services or ()),
            kind=self.kind or "commit",
            link=self.link or "",
            environment=self.environment or "",
            version=self.version or "",
            carries=tuple(self.carries or ()),
            partial=bool(self.partial),
            dependant_services=tuple(self.dependant_services or ()),
            functions=tuple(self.functions or ()),
            identifiers=tuple(self.identifiers or ()),
        )


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


def of_repository(query: Select[Any], repo: str | None) -> Select[Any]:
    """``query`` narrowed to one repository's commits and every change event.

    A deploy, a flag flip or a config push is stored under its source's name,
    not a repository's, and can break any repository's service: an
    investigation scoped to a repository must still see them.
    """
    return query.where(or_(Change.repo == repo, Change.kind != "commit")) if repo else query


def changes_landed_between(
    session: Session, start: datetime, end: datetime, repo: str | None = None
) -> list[Change]:
    """Changes that landed in ``[start, end)``, newest first, with their files loaded (see :func:`of_repository`)."""
    from sqlalchemy.orm import selectinload

    query = (
        select(Change)
        .where(Change.landed_time >= start, Change.landed_time < end)
        .options(selectinload(Change.files))
        .order_by(Change.landed_time.desc())
    )
    return list(session.scalars(of_repository(query, repo)))


def existing_change_ids(session: Session, ids: list[str], complete_only: bool = False) -> set[str]:
    """The subset of ``ids`` already stored, so ingestion can skip them (with ``complete_only``,
    not those known only from a webhook payload, which git's record should replace)."""
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        query = select(Change.id).where(Change.id.in_(ids[start : start + 500]))
        found.update(session.scalars(query.where(~Change.partial) if complete_only else query))
    return found
