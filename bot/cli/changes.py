"""``culprit ingest changes`` and ``culprit ingest repos``: change events from a file, tracked repositories now."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from bot.cli.console import console, print_json
from bot.cli.ingest import JsonOutput, _database_url, ingest_app
from knowledge.errors import InputError
from knowledge.lines import json_line

if TYPE_CHECKING:
    from knowledge.sources.events import EventsStored

MAX_FILE_BYTES = 50 * 1024 * 1024


def _events_from_file(path: Path) -> list[object]:
    """A JSON list, ``{"changes": [...]}``, or one JSON object per line; a line that is not JSON (nor UTF-8, or
    nested too deeply) becomes an :class:`UnreadableEvent` saying so, refused alone while the others are stored."""
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(f"{path} is over {MAX_FILE_BYTES} bytes; split it")
    content = path.read_bytes()
    from bot.sources_http import events_in

    try:
        document = json_line(content)
    except ValueError:  # not one JSON document: one event per line
        return [_line_event(number, line) for number, line in enumerate(content.splitlines(), start=1) if line.strip()]
    if isinstance(document, dict) and "changes" not in document:
        return [document]  # JSON lines of one line: one event, checked like any other
    try:
        return events_in(document)
    except ValueError as error:
        raise InputError(f"{path}: {error}") from None


def _line_event(number: int, line: bytes) -> object:
    """The line's JSON value, or why it has none, with its number (never the line, which may be huge or secret)."""
    # Imported here, as the commands do: the database layer loads only when a command runs.
    from knowledge.sources.events import UnreadableEvent

    try:
        return json_line(line)
    except ValueError as error:
        return UnreadableEvent(f"line {number}: {error}")


@ingest_app.command("changes")
def changes(
    file: Annotated[Path, typer.Argument(help="Change events: a JSON list, {\"changes\": [...]} or JSON lines.")],
    as_json: JsonOutput = False,
) -> None:
    """Deploys, feature-flag flips, config pushes and infrastructure changes (each id stored once).

    Each event needs id, kind (deploy, flag, config, infra), service, title and
    time; a deploy may name its commits (commits: [...] or commit_range with repo).
    Bad events are listed with their reasons and the rest are stored; when every
    event is refused the command fails (exit code 1)."""
    from knowledge.config import get_settings
    from knowledge.sources.events import check_events, store_events
    from knowledge.sources.mirrors import tracked_mirrors

    batch = check_events(_events_from_file(file))
    settings = get_settings()
    stored = store_events(batch, _database_url(), tracked_mirrors(settings.repos, settings.mirrors_dir))
    if as_json:
        print_json({"received": batch.received, "stored": stored.new, "already_present": stored.already_present,
                    "rejected": [vars(item) for item in stored.rejected],
                    "unknown_commits": [vars(item) for item in stored.unknown_commits]})  # fmt: skip
    else:
        _show_stored(file, stored)
    if stored.rejected and not stored.new and not stored.already_present:  # a script or cron must see it fail
        raise InputError(f"nothing stored from {file}: all {len(stored.rejected)} change events were refused "
                         "(reasons above)")  # fmt: skip


def _show_stored(file: Path, stored: EventsStored) -> None:
    """The counts on one line, then each refused event; ids and reasons quote the file, so never as markup."""
    refused = f", [yellow]{len(stored.rejected)} refused[/]" if stored.rejected else ""
    console.print(f"[bold]change events[/] from {escape(str(file))}: [green]{stored.new} new[/], "
                  f"{stored.already_present} already present{refused}", highlight=False, soft_wrap=True)  # fmt: skip
    for item in stored.rejected:
        console.print(f"  [yellow]refused[/] event {item.index} ({escape(str(item.id))}): {escape(item.reason)}", highlight=False, soft_wrap=True)
    for unknown in stored.unknown_commits:
        console.print(f"  [yellow]not carried[/] by event {unknown.index} ({escape(unknown.id)}), no stored commit: "
                      f"{', '.join(unknown.commits)}", highlight=False, soft_wrap=True)  # fmt: skip


@ingest_app.command("repos")
def repos(as_json: JsonOutput = False) -> None:
    """Fetch every repository in CULPRIT_REPOS into its mirror and store its new commits now."""
    import sys

    import structlog

    from knowledge.config import get_settings
    from knowledge.sources.polling import poll_repository

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout is the answer's
    settings = get_settings()
    if not settings.repos:
        raise InputError('no repositories to poll: set CULPRIT_REPOS, e.g. [{"name":"acme/web","path":"/src/web"}]')
    url = _database_url()
    results = [
        poll_repository(repo, settings.mirrors_dir, url, settings.poll_seconds, claim_slot=False)
        for repo in settings.repos
    ]
    if as_json:
        print_json({"polled": [vars(result) for result in results]})
    else:
        for result in results:
            line = f"[red]failed[/]: {escape(result.error)}" if result.error else f"[green]{result.new} new[/], {result.completed} completed"
            console.print(f"[bold]{escape(result.repo)}[/]: {line}", highlight=False, soft_wrap=True)
    if any(result.error for result in results):  # the others were still polled; a script or cron sees the failure
        raise typer.Exit(1)
