"""Path ownership rules from CODEOWNERS or MAINTAINERS files."""

from __future__ import annotations

from sqlalchemy import JSON, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from knowledge.db import Base


class OwnershipRule(Base):
    """One path pattern and the owners it names; later rules win, as in CODEOWNERS."""

    __tablename__ = "ownership_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(500), index=True)
    position: Mapped[int] = mapped_column(Integer)
    pattern: Mapped[str] = mapped_column(Text)
    owners: Mapped[list[str]] = mapped_column(JSON, default=list)
    section: Mapped[str] = mapped_column(String(300), default="")


def replace_rules(session: Session, source: str, rules: list[OwnershipRule]) -> None:
    """Swap every rule of one source file for a new set, so re-ingesting is idempotent."""
    session.execute(delete(OwnershipRule).where(OwnershipRule.source == source))
    session.add_all(rules)


def all_rules(session: Session) -> list[OwnershipRule]:
    return list(session.scalars(select(OwnershipRule).order_by(OwnershipRule.source, OwnershipRule.position)))
