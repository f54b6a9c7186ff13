"""The ``culprit`` command: one Typer group per noun, errors as one red line.

Command modules import Typer, Rich and ``knowledge.errors`` at the top and
everything else (settings, the store, MiniLM, Chroma, LangGraph, the judges)
inside the command that uses it, so ``--help`` and the light commands start at
once (``tests/test_cli_imports.py`` holds them to it). Typer reads the commands'
signatures, so their types and defaults come from light modules too.
"""

from __future__ import annotations

import sys

import typer

from bot.cli.console import errors, log_to_stderr, print_error
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
    from bot.cli import changes as changes_commands  # noqa: F401  (adds `ingest changes` and `ingest repos`)
    from bot.cli import wiki as wiki_commands
    from bot.cli import sft as sft_commands
    from bot.cli import demo as demo_commands
    from bot.cli import feedback as feedback_commands
    from bot.cli import serve as serve_commands
    from bot.cli import rca as rca_commands
    from bot.cli import reports as reports_commands
    from bot.cli import model as model_commands
    from bot.cli import agent as agent_commands
    from bot.cli import doctor as doctor_commands
    from bot.cli import history as history_commands

    db_commands.register(app)
    ingest_commands.register(app)
    wiki_commands.register(app)
    sft_commands.register(app)
    demo_commands.register(app)
    feedback_commands.register(app)
    serve_commands.register(app)
    rca_commands.register(app)
    reports_commands.register(app)
    model_commands.register(app)
    agent_commands.register(app)
    doctor_commands.register(app)
    history_commands.register(app)


@app.callback()
def _every_command() -> None:
    # Runs before any command: logs go to stderr, stdout is the command's result alone.
    log_to_stderr()


_register()


def main() -> None:
    """Console entry point: known failures become one line each (one per bad setting) and exit code 1."""
    try:
        app()
    except CulpritError as error:
        print_error(str(error))
        sys.exit(1)
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/]")
        sys.exit(130)
    except Exception as error:
        # Imported here, where it costs nothing: SQLAlchemy is loaded whenever the error is one of its own.
        from sqlalchemy.exc import DatabaseError

        if not isinstance(error, DatabaseError):
            raise
        print_error(_database_problem(error))
        sys.exit(1)


def _database_problem(error: Exception) -> str:
    """A store that is missing its tables, is not a database or cannot be opened, as a line with the fix.

    A refused record (a constraint, usually another writer storing the same
    thing at the same moment) is not a broken store, and neither is a server
    that refused the connection before any SQL ran: upgrading would help neither.
    """
    from sqlalchemy.exc import IntegrityError, OperationalError

    from knowledge.config import get_settings, masked_url

    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    if isinstance(error, OperationalError) and error.statement is None:
        return (
            f"cannot reach the database at {masked_url(get_settings().resolved_database_url)} ({reason}); "
            "check CULPRIT_DATABASE_URL and that the server is running"
        )
    if isinstance(error, IntegrityError):
        return (
            f"the database at {masked_url(get_settings().resolved_database_url)} refused a record ({reason}); "
            "the step that stored it was rolled back: run the command again, and if it is refused again "
            "check what else writes to this database"
        )
    return (
        f"the database at {masked_url(get_settings().resolved_database_url)} cannot be used ({reason}); "
        "run `culprit db upgrade` to create its tables, or set CULPRIT_DATABASE_URL or CULPRIT_DATA_DIR to a usable one"
    )
