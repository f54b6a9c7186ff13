"""``culprit db``: create or upgrade the schema."""

from __future__ import annotations

import typer

from bot.cli.console import console, print_json


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="Manage the database schema.", no_args_is_help=True)

    @db.command("upgrade")
    def upgrade(as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON.")) -> None:
        """Apply every pending migration (safe to run from several replicas at once)."""
        from knowledge.config import get_settings, masked_url
        from knowledge.db import migrate

        settings = get_settings()
        migrate(settings.resolved_database_url)
        shown = masked_url(settings.resolved_database_url)
        if as_json:
            print_json({"database": shown, "up_to_date": True})
            return
        console.print(f"schema is up to date at {shown}")

    app.add_typer(db, name="db")
