"""``culprit export-sft``: fine-tuning examples for an LLM judge from past investigations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.console import console, print_json, track
from tools.rca.history.sft_format import MAX_CANDIDATES, MIN_CANDIDATES, RecordFormat


def register(app: typer.Typer) -> None:
    @app.command("export-sft")
    def export_sft_command(
        out: Annotated[Path, typer.Argument(help="JSON-lines file to write.")],
        cases: Annotated[list[Path], typer.Option("--cases", help="cases-*.jsonl[.gz]; repeatable.")],
        commits: Annotated[list[Path], typer.Option("--commits", help="commits-*.jsonl[.gz]; repeatable.")],
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
        from tools.rca.history.cases import load_history
        from tools.rca.history.sft_export import export_sft

        history = load_history(cases, commits, skip_bad=skip_bad, offers_skip=True)
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
