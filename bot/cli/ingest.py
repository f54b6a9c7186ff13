"""``culprit ingest``: load changes, past investigations, ownership and services.

Every command is idempotent: running it again reports everything as already
present. Other modules add their own sources with ``@ingest_app.command(...)``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import Progress as RichProgress
from rich.progress import TaskID

from bot.cli.console import console, counted, print_json, progress_bar
from knowledge.errors import InputError

if TYPE_CHECKING:
    from knowledge.ingest.names_backfill import NamesReport
    from knowledge.ingest.report import LoadReport

ingest_app = typer.Typer(
    help="Load changes, past investigations, ownership and services into the store.",
    no_args_is_help=True,
)

JsonOutput = Annotated[bool, typer.Option("--json", help="Print the counts as JSON on stdout.")]


class TerminalProgress:
    """The loaders' progress as Rich bars: one bar per step, each closed when the next starts."""

    def __init__(self, bars: RichProgress) -> None:
        self._bars = bars
        self._task: TaskID | None = None

    def start(self, description: str, total: int | None = None) -> None:
        self._finish()
        self._task = self._bars.add_task(escape(description), total=total)  # names a repository or file

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._bars.advance(self._task, amount)

    def _finish(self) -> None:
        if self._task is None:
            return
        task = next(task for task in self._bars.tasks if task.id == self._task)
        if task.total is None:
            self._bars.update(self._task, total=max(task.completed, 1), completed=max(task.completed, 1))
        self._bars.stop_task(self._task)


def _database_url() -> str:
    """The configured database, migrated first so a fresh data directory just works."""
    from knowledge.config import get_settings
    from knowledge.db import migrate

    url = get_settings().resolved_database_url
    migrate(url)
    return url


def show_loaded(reports: list[LoadReport], as_json: bool) -> None:
    if as_json:
        print_json({"loaded": [report.as_dict() for report in reports]})
        return
    for report in reports:
        counts = [f"[green]{report.new} new[/]", f"{report.already_present} already present"]
        if report.updated:
            counts.append(f"[cyan]{report.updated} updated[/]")
        if report.bad_lines:
            counts.append(f"[yellow]{counted(len(report.bad_lines), *report.skipped_what)} skipped[/]")
        if notes := report.notes():
            counts.append(f"[yellow]{len(notes)} stored with a note[/]")
        console.print(
            f"[bold]{report.kind}[/] from {escape(report.source)}: " + ", ".join(counts), highlight=False, soft_wrap=True
        )
        for bad_line in report.bad_lines:  # quotes the file's own text, which may read as markup
            console.print(f"  [yellow]skipped[/] {escape(bad_line)}", highlight=False, soft_wrap=True)
        for note in notes:
            console.print(f"  [yellow]note[/] {escape(note)}", highlight=False, soft_wrap=True)


def fail_when_nothing_loaded(reports: list[LoadReport]) -> None:
    """Exit 1, once every source's counts are shown, when a source gave only bad lines: a script or cron
    loading the wrong file (a cases file as --commits) must see it fail, not a quiet "0 new"."""
    if empty := [report for report in reports if report.bad_lines and not (report.new or report.already_present)]:
        raise InputError("; ".join(f"nothing loaded from {report.source}: no line was good "
                                   f"({len(report.bad_lines)} bad, listed above)" for report in empty))  # fmt: skip


@ingest_app.command("git")
def git(
    path: Annotated[Path, typer.Argument(help="A git clone (work tree or bare).")],
    since: Annotated[
        datetime | None,
        typer.Option(help="Only changes that landed on or after this date (UTC).",
                     formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    ] = None,
    branch: Annotated[str | None, typer.Option(help="Main line to follow (default: HEAD).")] = None,
    repo: Annotated[str | None, typer.Option(help="Repository name (default: from origin, else the folder).")] = None,
    as_json: JsonOutput = False,
) -> None:
    """Changes of a git repository, each with the time it landed on the main line.

    Again with nothing new, it reads only what landed since the last run on that
    branch (everything again after a force-push)."""
    from knowledge.ingest.git_log import ingest_git, repository_name

    url = _database_url()
    with progress_bar() as bars:
        report = ingest_git(path, url, since=since, branch=branch, repo_name=repo,
                            progress=TerminalProgress(bars))  # fmt: skip
    from knowledge.sources.freshness import note_ingested_by_hand

    note_ingested_by_hand(url, repo or repository_name(path))
    show_loaded([report], as_json)


@ingest_app.command("history")
def history(
    commits: Annotated[
        list[Path] | None, typer.Option("--commits", help="A commits-*.jsonl(.gz) file; repeat for several.")
    ] = None,
    cases: Annotated[
        list[Path] | None, typer.Option("--cases", help="A cases-*.jsonl(.gz) file; repeat for several.")
    ] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Load the good lines and report the bad ones.")] = False,
    as_json: JsonOutput = False,
) -> None:
    """Past investigations: commits become changes, cases become incidents with their root causes.

    Exit code 1 when a file held no good line, even with --skip-bad (the other files are still loaded)."""
    if not commits and not cases:
        raise InputError("nothing to load: give --commits FILE and/or --cases FILE")
    from knowledge.ingest.history import ingest_cases, ingest_commits
    from tools.rca.store import stored_words

    url = _database_url()
    reports: list[LoadReport] = []
    with progress_bar() as bars:
        progress = TerminalProgress(bars)
        reports += [ingest_commits(path, url, skip_bad, progress) for path in commits or []]
        reports += [ingest_cases(path, url, stored_words, skip_bad, progress) for path in cases or []]
    show_loaded(reports, as_json)
    fail_when_nothing_loaded(reports)


@ingest_app.command("codeowners")
def codeowners(
    file: Annotated[Path, typer.Argument(help="A CODEOWNERS file.")], as_json: JsonOutput = False
) -> None:
    """Ownership rules from CODEOWNERS; they replace the rules this file gave before."""
    from knowledge.ingest.codeowners import ingest_codeowners

    show_loaded([ingest_codeowners(file, _database_url())], as_json)


@ingest_app.command("maintainers")
def maintainers(
    file: Annotated[Path, typer.Argument(help="A Linux-style MAINTAINERS file.")], as_json: JsonOutput = False
) -> None:
    """Ownership rules from MAINTAINERS entries; they replace the rules this file gave before."""
    from knowledge.ingest.maintainers import ingest_maintainers

    url = _database_url()
    with progress_bar() as bars:
        report = ingest_maintainers(file, url, TerminalProgress(bars))
    show_loaded([report], as_json)


@ingest_app.command("catalog")
def catalog(
    files: Annotated[list[Path], typer.Argument(help="Backstage catalog-info.yaml files.")],
    as_json: JsonOutput = False,
) -> None:
    """Services, their owners, code paths and dependencies from a Backstage catalog."""
    from knowledge.ingest.catalog import ingest_catalog

    show_loaded([ingest_catalog(files, _database_url())], as_json)


@ingest_app.command("reattribute")
def reattribute_changes(as_json: JsonOutput = False) -> None:
    """Attribute every stored change to services again, from the catalog and ownership rules stored now.

    Ingesting a catalog or ownership file that changed does this by itself; run it
    after loading changes into a store whose catalog came later."""
    from knowledge.attribution import reattribute

    looked_at, updated = reattribute(_database_url())
    if as_json:
        print_json({"changes": looked_at, "updated": updated})
        return
    console.print(f"[bold]changes[/]: {looked_at} looked at, [cyan]{updated} re-attributed[/]", highlight=False)


@ingest_app.command("names")
def names(
    path: Annotated[
        Path | None, typer.Argument(help="A clone of the repository (default: each tracked repository's mirror).")
    ] = None,
    repo: Annotated[
        str | None,
        typer.Option(help="Only this repository's changes (with PATH, the name they are stored under; "
                          "default: from origin, else the folder)."),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """Read the functions and identifiers of changes stored before culprit read them (upgrades past 0010).

    Polls and `ingest git` read names only for new commits; this reads the patches of
    stored commits whose names are unknown, in batches, from each tracked repository's
    mirror or from PATH. Safe to interrupt and run again: only what is still unknown is
    read. Commits the repository no longer holds stay unknown and are counted."""
    from knowledge.config import get_settings
    from knowledge.ingest.git_log import repository_name
    from knowledge.ingest.names_backfill import backfill_names, backfill_tracked
    from knowledge.sources.mirrors import tracked_mirrors
    from tools.rca.embeddings import ChangeEmbeddings
    from tools.rca.resources import embeddings_dir

    settings = get_settings()
    url = _database_url()
    reports: list[NamesReport]
    gained: list[str] = []
    try:
        with progress_bar() as bars:
            progress = TerminalProgress(bars)
            if path is not None:
                name = repo or repository_name(path)
                reports = [backfill_names(path, url, name, progress, on_functions=gained.extend)]
            else:
                mirrors = tracked_mirrors(settings.repos, settings.mirrors_dir)
                reports = backfill_tracked(url, mirrors, repo, progress, on_functions=gained.extend)
    finally:
        # Also when interrupted: their embedding text now names their functions, and the next
        # run will not see them again (embedded again by the next embed-changes or RCA).
        dropped = ChangeEmbeddings(embeddings_dir(settings.data_dir)).forget(gained) if gained else 0
    if as_json:
        print_json({"repositories": [report.as_dict() for report in reports], "embeddings_dropped": dropped})
    else:
        _show_names(reports, dropped, repo)


def _show_names(reports: list[NamesReport], dropped: int, repo: str | None) -> None:
    """One line per repository; names and reasons come from the store, so never as markup."""
    if not reports:
        which = escape(repo) if repo else "any repository"
        console.print(f"[bold]names[/]: no stored change of {which} lacks its names", highlight=False)
    for report in reports:
        counts = [f"[green]{report.filled} filled[/]", f"{report.gone} no longer in the repository"]
        counts += [f"[yellow]{count} skipped[/]: {escape(reason)}" for reason, count in report.skipped.items()]
        source = f" ({escape(report.source)})" if report.source else ""
        console.print(f"[bold]names[/] of {escape(report.repo)}{source}: " + ", ".join(counts),
                      highlight=False, soft_wrap=True)  # fmt: skip
    if dropped:
        console.print(f"{dropped} change embeddings dropped, to be embedded again with their functions "
                      "(`culprit embed-changes`, or the next RCA that sees them)", highlight=False)  # fmt: skip


def register(app: typer.Typer) -> None:
    app.add_typer(ingest_app, name="ingest")
