"""The ``culprit`` command: one Typer group per noun, errors as one red line."""

from __future__ import annotations

import sys

import typer

from bot.cli.console import errors
from knowledge.errors import CulpritError

app = typer.Typer(
    name="culprit",
    help="Find the code change behind an incident, from Slack or the terminal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    """Attach every command group; each module owns one noun."""
    from bot.cli import db as db_commands
    from bot.cli import ingest as ingest_commands
    from bot.cli import wiki as wiki_commands
    from bot.cli import sft as sft_commands
    from bot.cli import demo as demo_commands
    from bot.cli import feedback as feedback_commands
    from bot.cli import serve as serve_commands
    from bot.cli import rca as rca_commands
    from bot.cli import reports as reports_commands

    db_commands.register(app)
    ingest_commands.register(app)
    wiki_commands.register(app)
    sft_commands.register(app)
    demo_commands.register(app)
    feedback_commands.register(app)
    serve_commands.register(app)
    rca_commands.register(app)
    reports_commands.register(app)


_register()


def main() -> None:
    """Console entry point: known failures become one line and exit code 1."""
    try:
        app()
    except CulpritError as error:
        errors.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/]")
        sys.exit(130)
