"""``culprit demo``: try culprit on a generated organisation, offline, in well under a minute."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from bot.cli.console import console, print_json, progress_bar
from bot.cli.ingest import TerminalProgress, show_loaded

if TYPE_CHECKING:
    from bot.demo_run import DemoRun


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        directory: Annotated[
            Path | None,
            typer.Option("--dir", help="Where to write the demo files (default: <data dir>/demo)."),
        ] = None,
        seed: Annotated[int, typer.Option(help="Another seed gives another organisation.")] = 7,
        # Upper bounds: past ten years the history starts before the demo's dates can be stored (and a huge
        # number overflowed them); past these counts generating and loading stalls for hours.
        days: Annotated[int, typer.Option(min=30, max=3650, help="How many days of history to generate.")] = 180,
        changes: Annotated[int, typer.Option(min=200, max=100_000, help="How many changes over those days.")] = 3000,
        incidents: Annotated[int, typer.Option(min=20, max=10_000, help="How many past incidents with known causes.")] = 300,
        as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON on stdout.")] = False,
    ) -> None:
        """Generate the Acme shop (services, owners, months of changes, past incidents, wiki),
        load it, train the local judge and answer an example incident."""
        from bot.demo_run import run_demo
        from knowledge.config import get_settings

        settings = get_settings()
        directory = directory or settings.data_dir / "demo"
        with progress_bar(transient=not as_json) as bars:
            run = run_demo(
                settings, directory, seed, TerminalProgress(bars), days=days, n_changes=changes, n_incidents=incidents
            )
        if as_json:
            print_json(_as_json(run))
            return
        show_loaded(run.loaded, False)
        console.print(run.training, highlight=False, soft_wrap=True)
        outages = ", ".join(f"{spike.category} on {spike.start}" for spike in run.org.reports.spikes)
        console.print(f"bug reports carry outages to find with `culprit reports trends`: {outages}", highlight=False)
        _show_answer(run, run.threshold)


def _as_json(run: DemoRun) -> dict[str, object]:
    return {
        "directory": str(run.files.directory),
        "files": {name: str(path) for name, path in asdict(run.files).items()},
        "loaded": [report.as_dict() for report in run.loaded],
        "training": run.training,
        "report_outages": [asdict(spike) for spike in run.org.reports.spikes],
        "example": {
            **asdict(run.example_query),
            "true_culprits": run.org.example.culprits,
            "culprit_rank": run.culprit_rank,
        },
        "answer": run.answer.to_dict(),
    }


def _show_answer(run: DemoRun, min_confidence: float) -> None:
    from bot.cli.answer_view import print_answer

    query, answer = run.example_query, run.answer
    console.rule(f"[bold]Example incident {query.incident_id}")
    console.print(
        f"[bold]{query.title}[/]\n{query.text}\n[dim]service {query.service}, "
        f"started {query.started_at:%Y-%m-%d %H:%M} UTC, {answer.n_candidates} changes landed in the window[/]",
        highlight=False,
        soft_wrap=True,
    )
    print_answer(answer, min_confidence, run.org.example.culprits)
    if run.culprit_rank is None:
        culprit = run.org.changes_by_id[run.org.example.culprits[0]]
        console.print(f"[dim]The answer key's cause was {culprit.id[:10]} {escape(culprit.title)}.[/]", highlight=False)
    console.print(
        f"\nAsk your own: culprit rca \"<what you see>\" --service {query.service} "
        f"--at {query.started_at:%Y-%m-%dT%H:%M:%SZ}",
        highlight=False,
        soft_wrap=True,
    )
