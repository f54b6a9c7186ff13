"""``culprit model list | show | promote | rollback | retrain``: the ranker's versions and its promotion gate."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bot.cli.console import LARGEST_ID, console, print_json

JSON_OPTION = typer.Option(False, "--json", help="Print JSON instead of text.")


def _store() -> tuple[str, Path]:
    """The migrated store's URL and the data directory its versions' files are in."""
    from knowledge.config import get_settings
    from knowledge.db import migrate

    settings = get_settings()
    migrate(settings.resolved_database_url)
    return settings.resolved_database_url, settings.data_dir


def _figures(figures: dict, name: str) -> str:  # type: ignore[type-arg]
    part = figures.get(name) or {}
    return f"{part['top5']:.3f} / {part['ece']:.3f}" if part else "—"


def register(app: typer.Typer) -> None:
    model = typer.Typer(help="Versions of the local judge, retraining and promotion.", no_args_is_help=True)

    @model.command("list")
    def list_versions(json_output: bool = JSON_OPTION) -> None:
        """Every trained version, newest first; the champion is the one every replica answers with."""
        from tools.rca.retrain.registry import versions

        url, data_dir = _store()
        found = versions(url, data_dir=data_dir)
        if json_output:
            print_json([info.to_dict() for info in found])
            return
        if not found:
            console.print("no model versions yet: run `culprit model retrain`")
            return
        table = Table(title="Ranker versions (replay figures: top-5 / ECE)")
        for column in ("version", "status", "created", "cases", "challenger", "champion then"):
            table.add_column(column)
        for info in found:
            status = f"[bold]{info.status}[/]" if info.champion else info.status
            table.add_row(f"v{info.version}", status, info.created_at.isoformat(timespec="minutes"), str(info.n_cases),
                          _figures(info.figures, "challenger"), _figures(info.figures, "champion"))
        console.print(table)

    @model.command("show")
    def show(version: int = typer.Argument(..., min=1, max=LARGEST_ID, help="The version number.")) -> None:
        """One version: its file, what it learned from, and the figures it was judged on."""
        from tools.rca.retrain.registry import version as find

        url, data_dir = _store()
        print_json(find(version, url, data_dir=data_dir).to_dict())

    @model.command("promote")
    def promote(version: int = typer.Argument(..., min=1, max=LARGEST_ID, help="The version to serve.")) -> None:
        """Serve VERSION from now on, on every replica (they check before each answer)."""
        from tools.rca.retrain.registry import promote as make_champion

        url, data_dir = _store()
        info = make_champion(version, url, data_dir=data_dir, note="promoted by hand")
        console.print(f"v{info.version} is the champion")

    @model.command("rollback")
    def rollback() -> None:
        """Serve the previous champion again; the current one is marked rolled back."""
        from tools.rca.retrain.registry import rollback as roll_back

        url, data_dir = _store()
        info = roll_back(url, data_dir=data_dir)
        console.print(f"rolled back: v{info.version} is the champion")

    @model.command("retrain")
    def retrain(json_output: bool = JSON_OPTION) -> None:
        """Train a challenger on the store's labelled history and promote it only if it replays no worse."""
        from bot.retraining import run_retrain
        from knowledge.config import get_settings

        _store()
        verdict = run_retrain(get_settings())
        if json_output:
            print_json(verdict.to_dict())
        else:
            console.print(verdict.text, markup=False, highlight=False)

    app.add_typer(model, name="model")
