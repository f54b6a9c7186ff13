"""``culprit history``: past investigations mined from a repository's fix commits, or exported from the store."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from bot.cli.console import console, print_json, progress_bar

if TYPE_CHECKING:
    from knowledge.ingest.mining import MiningReport

history_app = typer.Typer(
    help="Past investigations: mined from a repository's history, or exported from the store.", no_args_is_help=True
)

SinceOption = Annotated[
    datetime | None,
    typer.Option("--since", help="Only fixes written on or after this date (UTC).",
                 formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
]  # fmt: skip
RepoOption = Annotated[str | None, typer.Option("--repo", help="Repository name (default: from origin, else the folder).")]
BranchOption = Annotated[str | None, typer.Option("--branch", help="Main line to mine (default: HEAD).")]
WindowOption = Annotated[
    int, typer.Option("--window-days", min=1, max=3650, help="Candidates: the changes landed this many days before.")
]


def mine(
    path: Path, out: Path, repo: str | None, since: datetime | None, branch: str | None
) -> MiningReport:
    """Mine ``path`` into ``out`` with a progress bar on stderr."""
    from bot.cli.ingest import TerminalProgress
    from knowledge.ingest.mining import mine_history

    with progress_bar() as bars:
        return mine_history(path, out, repo_name=repo, since=since, branch=branch, progress=TerminalProgress(bars))


def show_mining(report: MiningReport) -> None:
    kinds = ", ".join(f"{count} {kind}" for kind, count in report.link_kinds.most_common()) or "none"
    console.print(
        f"[bold]{report.cases}[/] cases from {report.fix_commits_with_links} fix commits that name a change "
        f"in {escape(report.repo)} ({report.commits_read} commits read); by link: {kinds}",
        highlight=False, soft_wrap=True,
    )  # fmt: skip
    for reason, count in report.skipped.most_common():
        console.print(f"  skipped {count}: {reason.replace('_', ' ')}", markup=False, highlight=False)
    for sha, why in report.refused_commits.items():
        console.print(f"  [yellow]refused[/] commit {escape(sha[:12])}: {escape(why)}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @history_app.command("mine")
    def mine_command(
        path: Annotated[Path, typer.Argument(help="A git clone (work tree or bare).")],
        repo: RepoOption = None,
        since: SinceOption = None,
        branch: BranchOption = None,
        out: Annotated[
            Path | None, typer.Option("--out", help="Write cases-*/commits-*.jsonl.gz here instead of loading them.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON on stdout.")] = False,
    ) -> None:
        """Turn fix commits that name the change they repair into past investigations.

        Recognised: `Fixes: <sha>` trailers, reverts, and "introduced by / broken by /
        regression since <sha>"; a sha named otherwise counts in a commit that says it fixes."""
        loaded = []
        with tempfile.TemporaryDirectory(prefix="culprit-mined-") as scratch:
            report = mine(path, out or Path(scratch), repo, since, branch)
            if out is None:
                from bot.cli.ingest import TerminalProgress, _database_url
                from knowledge.ingest.history import ingest_cases, ingest_commits
                from tools.rca.store import stored_words

                url = _database_url()
                cases_file, commits_file = map(Path, report.files)
                with progress_bar() as bars:
                    loaded = [
                        ingest_commits(commits_file, url, progress=TerminalProgress(bars)),
                        ingest_cases(cases_file, url, stored_words, progress=TerminalProgress(bars)),
                    ]
                report.files = []
        if as_json:
            print_json({**report.as_dict(), "loaded": [load.as_dict() for load in loaded]})
            return
        show_mining(report)
        for load in loaded:
            console.print(f"[bold]{load.kind}[/]: [green]{load.new} new[/], {load.already_present} already present")
        if report.files:
            console.print(f"written: {', '.join(report.files)}", markup=False, highlight=False, soft_wrap=True)

    @history_app.command("export")
    def export_command(
        out: Annotated[Path, typer.Argument(help="Folder to write cases-*/commits-*.jsonl.gz into.")],
        window_days: WindowOption = 14,
        as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON on stdout.")] = False,
    ) -> None:
        """Write the store's confirmed root causes as history files for `culprit train`, `backtest`, `export-sft`.

        Only causes that are labels (past investigations, postmortems, a confirmer's ✅, two agreeing 👍;
        never one vote), each incident as known at its start; commit authors are left out."""
        from bot.cli.ingest import TerminalProgress, _database_url
        from tools.rca.history.from_store import confirmed_history, write_history_files

        with progress_bar() as bars:
            history = confirmed_history(_database_url(), window_days, TerminalProgress(bars))
            files = write_history_files(history, out, TerminalProgress(bars))
        if as_json:
            print_json({"cases": len(history.cases), "commits": len(history.commits), "repos": history.repos(),
                        "files": files})  # fmt: skip
            return
        console.print(
            f"[bold]{len(history.cases)}[/] confirmed cases and {len(history.commits)} changes of "
            f"{len(history.repos())} repositories written: {escape(', '.join(files))}",
            highlight=False, soft_wrap=True,
        )  # fmt: skip

    app.add_typer(history_app, name="history")
