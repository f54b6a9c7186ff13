"""``culprit doctor``: one line per check with its fix; exit 1 if any failed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from bot.cli.console import console, print_json

MARKS = {"pass": "[green]ok  [/]", "fail": "[bold red]FAIL[/]", "skip": "[dim]skip[/]"}


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor(
        as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON on stdout.")] = False,
        stale_days: Annotated[
            float, typer.Option(
                "--stale-days", min=0.01, max=3650, help="A polled repository is stale past this many days (at most 3650)."
            )
        ] = 7.0,
    ) -> None:
        """Check the database, Slack, Chroma, the LLM, the model, the sources and the scheduler; print each fix."""
        from bot.doctor import DoctorOptions, any_failed, run_checks
        from knowledge.config import get_settings

        results = run_checks(get_settings(), DoctorOptions(stale_after_days=stale_days))
        failing = any_failed(results)
        if as_json:
            print_json({"ok": not failing, "checks": [result.as_dict() for result in results]})
        else:
            for result in results:
                fix = f"\n      [yellow]fix:[/] {escape(result.fix)}" if result.fix else ""
                console.print(
                    f"{MARKS[result.status]} [bold]{escape(result.name)}[/]  {escape(result.detail)}{fix}",
                    highlight=False, soft_wrap=True,
                )
        if failing:
            raise typer.Exit(1)
