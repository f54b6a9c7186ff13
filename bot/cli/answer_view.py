"""An RCA answer in the terminal: a numbered list with evidence that reads at any width.

Everything shown from the store (titles, authors, wiki headings, sentences quoting the incident) is
escaped: a commit titled "[/api] fix" read as Rich markup and crashed the command."""

from __future__ import annotations

from collections.abc import Collection

from rich.markup import escape

from bot.blocks import SHOWN_REASONS, duration
from bot.cli.console import console
from tools.rca.answers import RcaAnswer, SuggestedChange


def print_answer(answer: RcaAnswer, min_confidence: float, answer_key: Collection[str] = ()) -> None:
    """Suggestions with their evidence sentences, or the strongest signals when withheld.

    ``answer_key`` marks known culprits (the demo shows whether it found its own)."""
    if not answer.confident and answer.stale_sources:
        console.print("[yellow]My knowledge of recent changes is stale[/]: it ends before the incident began.",
                      highlight=False, soft_wrap=True)  # fmt: skip
        for source in answer.stale_sources:
            console.print(f"  - {escape(source.summary)}. Fix: {escape(source.fix)}", highlight=False, soft_wrap=True)
    elif not answer.confident:
        console.print(
            f"[yellow]Not confident enough to suggest changes[/] (confidence {answer.confidence:.2f}, "
            f"threshold {min_confidence:.2f}; {answer.n_candidates} changes in the window). Strongest signals:",
            highlight=False,
            soft_wrap=True,
        )
        for signal in answer.strongest_signals:
            console.print(f"  - {escape(signal)}", highlight=False, soft_wrap=True)
    else:
        console.print(
            f"\n[bold]Most likely causes[/] (confidence {answer.confidence:.2f}, "
            f"{answer.n_candidates} changes checked):",
            highlight=False,
        )
        if answer.why_first:
            console.print(f"[dim]{escape(answer.why_first)}[/]", highlight=False, soft_wrap=True)
        for suggestion in answer.suggestions:
            mark = "  [green]<- the cause in the answer key[/]" if suggestion.change_id in answer_key else ""
            console.print(
                f"[bold]{suggestion.rank}.[/] [cyan]{suggestion.change_id[:10]}[/] {escape(suggestion.change.title)} "
                f"[dim]({escape(_byline(suggestion))})[/]{mark}",
                highlight=False,
                soft_wrap=True,
            )
            for reason in suggestion.evidence.reasons[:SHOWN_REASONS]:
                console.print(f"     [dim]- {escape(reason.sentence)}[/]", highlight=False, soft_wrap=True)
    if answer.expected_hit_rate:
        console.print(escape(answer.expected_hit_rate), highlight=False, soft_wrap=True)
    if not answer.calibrated:
        console.print(f"[yellow]confidence uncalibrated: {escape(answer.uncalibrated_because)}[/]", highlight=False, soft_wrap=True)
    if answer.wiki:
        console.print("\n[bold]Related wiki pages[/]:", highlight=False)
        for hit in answer.wiki:
            console.print(f"  - {escape(hit.page)} > {escape(hit.heading)}", highlight=False, soft_wrap=True)
    for source in answer.freshness:
        style = "yellow" if source.stale else "dim"
        console.print(f"[{style}]{source.label}: {escape(source.summary)}[/]", highlight=False, soft_wrap=True)
    for note in answer.notes:
        console.print(f"[dim]note: {escape(note)}[/]", highlight=False, soft_wrap=True)
    if answer.model:
        console.print(f"[dim]judged by {escape(answer.model)}[/]", highlight=False, soft_wrap=True)
    for missing in answer.unavailable_evidence:
        console.print(f"[yellow]evidence unavailable in this answer: {escape(missing)}[/]", highlight=False, soft_wrap=True)


def _byline(suggestion: SuggestedChange) -> str:
    """Author, when it landed and the judge; a deploy or flag event has no author, which left "(, landed"."""
    landed = f"landed {duration(suggestion.evidence.minutes_before_incident)} before"
    return ", ".join(part for part in (suggestion.change.author, landed, f"judge {suggestion.judge}") if part)
