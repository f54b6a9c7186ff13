"""A store taken back to an older schema revision, as a team that ran that release has it."""

from __future__ import annotations

from alembic import command

from knowledge.db import alembic_config, get_engine


def downgrade_to(url: str, revision: str) -> None:
    """Run the migrations down to ``revision`` on one connection of the store's own engine, committed."""
    with get_engine(url).connect() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
        connection.commit()
