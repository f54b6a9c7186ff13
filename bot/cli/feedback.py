"""``culprit feedback stats``: how often responders confirmed what culprit suggested."""

from __future__ import annotations

import typer
from rich.table import Table

from bot.cli.console import console, print_json


def register(app: typer.Typer) -> None:
    feedback = typer.Typer(help="What responders said about culprit's suggestions.", no_args_is_help=True)

    @feedback.command("stats")
    def stats(json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
        """Precision of suggestions by week: confirmed (👍) among those voted on."""
        from knowledge.config import get_settings
        from knowledge.db import migrate
        from tools.feedback.votes import precision_by_week

        database_url = get_settings().resolved_database_url
        migrate(database_url)
        weeks = precision_by_week(database_url=database_url)
        if json_output:
            print_json([week.to_dict() for week in weeks])
            return
        if not weeks:
            console.print("no feedback yet: votes appear here once responders click 👍 or 👎 in Slack")
            return
        table = Table(title="Suggestion precision by week")
        for column in ("week", "voted", "confirmed", "rejected", "precision", "incidents", "solved"):
            table.add_column(column, justify="left" if column == "week" else "right")
        for week in weeks:
            precision = "—" if week.precision is None else f"{week.precision:.0%}"
            table.add_row(
                week.week,
                str(week.voted),
                str(week.confirmed),
                str(week.rejected),
                precision,
                str(week.incidents),
                str(week.incidents_solved),
            )
        console.print(table)

    app.add_typer(feedback, name="feedback")
