"""``culprit db``: create or upgrade the schema."""

from __future__ import annotations

import typer

from bot.cli.console import console


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="Manage the database schema.", no_args_is_help=True)

    @db.command("upgrade")
    def upgrade() -> None:
        """Apply every pending migration (safe to run from several replicas at once)."""
        from knowledge.config import get_settings, masked_url
        from knowledge.db import migrate

        settings = get_settings()
        migrate(settings.resolved_database_url)
        console.print(f"schema is up to date at {masked_url(settings.resolved_database_url)}")

    app.add_typer(db, name="db")
