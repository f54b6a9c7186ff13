"""``culprit export-sft``: fine-tuning examples for an LLM judge from past investigations or confirmed causes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.console import console, print_json, progress_bar, track
from knowledge.errors import InputError
from tools.rca.history.sft_format import MAX_CANDIDATES, MIN_CANDIDATES, RecordFormat


if TYPE_CHECKING:
    from tools.rca.history.cases import History


def _history(cases: list[Path], commits: list[Path], from_store: bool, skip_bad: bool) -> History:
    """The history files given, or the store's confirmed causes: exactly one of the two."""
    if from_store and (cases or commits):
        raise InputError("--from-store reads the store: give it without --cases and --commits")
    if not from_store and not (cases and commits):
        raise InputError("give --cases and --commits (history files), or --from-store for the store's confirmed causes")
    if not from_store:
        from tools.rca.history.cases import load_history

        return load_history(cases, commits, skip_bad=skip_bad, offers_skip=True)
    from bot.cli.ingest import TerminalProgress, _database_url
    from tools.rca.history.from_store import confirmed_history

    with progress_bar() as bars:
        return confirmed_history(_database_url(), progress=TerminalProgress(bars))


def register(app: typer.Typer) -> None:
    @app.command("export-sft")
    def export_sft_command(
        out: Annotated[Path, typer.Argument(help="JSON-lines file to write.")],
        cases: Annotated[list[Path] | None, typer.Option("--cases", help="cases-*.jsonl[.gz]; repeatable.")] = None,
        commits: Annotated[
            list[Path] | None, typer.Option("--commits", help="commits-*.jsonl[.gz]; repeatable.")
        ] = None,
        from_store: Annotated[
            bool, typer.Option("--from-store", help="The store's confirmed root causes instead of history files.")
        ] = False,
        min_candidates: Annotated[int, typer.Option("--min", help="Fewest candidates per example.")] = MIN_CANDIDATES,
        max_candidates: Annotated[int, typer.Option("--max", help="Most candidates per example.")] = MAX_CANDIDATES,
        seed: Annotated[int, typer.Option(help="Sampling seed; the same seed writes the same file.")] = 0,
        form: Annotated[
            RecordFormat,
            typer.Option("--format", help="chat: messages ending in the culprit's letter; ranked: letters with relevance."),
        ] = RecordFormat.CHAT,
        symptom: Annotated[
            bool, typer.Option("--symptom", help="Keep only the symptom: first sentence, no paths or code names.")
        ] = False,
        skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip malformed lines instead of stopping.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    ) -> None:
        """Write supervised fine-tuning examples: incident + 2-20 lettered changes -> the culprit first."""
        from tools.rca.history.sft_export import export_sft

        history = _history(cases or [], commits or [], from_store, skip_bad)
        summary = export_sft(
            history,
            out,
            min_candidates=min_candidates,
            max_candidates=max_candidates,
            seed=seed,
            form=form,
            symptom=symptom,
            cases=track(history.cases, "exporting examples", total=len(history.cases)),
        )
        result = {"out": str(out), "format": form.value, **summary.to_dict()}
        if as_json:
            print_json(result)
            return
        skipped = result["skipped"]
        console.print(
            f"wrote [bold]{summary.examples}[/] {form.value} examples from {summary.cases} cases to {out} "
            f"(mean {result['mean_candidates']} candidates; skipped "
            f"{skipped['culprit_not_in_commit_files']} whose culprit is not in the commit files, "
            f"{skipped['culprit_landed_after_start']} whose culprit landed after the incident started, "
            f"{skipped['too_few_candidates']} with too few candidates)",
            highlight=False,
        )
