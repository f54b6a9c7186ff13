"""Services from a catalog, their owning team, path globs and dependencies."""

from __future__ import annotations

from sqlalchemy import JSON, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from knowledge.db import Base


class Service(Base):
    """A catalog component; ``depends_on`` lists service names it calls."""

    __tablename__ = "services"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    path_globs: Mapped[list[str]] = mapped_column(JSON, default=list)
    depends_on: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(500), default="")


def all_services(session: Session) -> list[Service]:
    return list(session.scalars(select(Service).order_by(Service.name)))
