"""Shared Rich console and output helpers for every CLI command."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console()
errors = Console(stderr=True)

T = TypeVar("T")

# Model versions and audit entries are INTEGER columns (32 bits on PostgreSQL): a larger number names
# nothing, and the database refuses it (SQLite with an OverflowError traceback), so the argument stops it.
LARGEST_ID = 2**31 - 1


def log_to_stderr() -> None:
    """Every structlog line on stderr, so stdout carries only a command's result and ``--json`` parses.

    structlog prints to stdout unless told otherwise. The logger is made at each
    call, so it writes to whatever ``sys.stderr`` is then (a test runner swaps it).
    ``culprit serve`` later replaces this with its JSON logging, on stderr too.

    The processors in place stay (structlog's defaults, or a test's capture), but an exception is
    redacted before a console renderer draws it: its Rich tracebacks print every frame's local
    variables (a statement's parameters, a row, a token), so it gets plain text instead, without a
    database error's message or a URL's password (:mod:`bot.log_redaction`).
    """
    import structlog

    from bot.log_redaction import redact_exceptions

    processors = [step for step in structlog.get_config()["processors"] if step is not redact_exceptions]
    renderers = [index for index, step in enumerate(processors) if isinstance(step, structlog.dev.ConsoleRenderer)]
    if renderers:
        processors.insert(renderers[0], redact_exceptions)
    structlog.configure(processors=processors, logger_factory=_stderr_logger, cache_logger_on_first_use=False)
    _library_warnings_to_stderr()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is logged (a test runner swaps it), as logging's
    last-resort handler does."""

    def __init__(self) -> None:
        logging.Handler.__init__(self, logging.WARNING)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr


def _library_warnings_to_stderr() -> None:
    """The standard library's loggers (SQLAlchemy, APScheduler, httpx, chromadb, slack_sdk, alembic) on stderr
    at WARNING, through :func:`bot.log_redaction.redact_exceptions`.

    Without a handler of its own, such a logger falls back to logging's last resort, which prints the
    traceback as it is: ending in PostgreSQL's DETAIL (a reporter's e-mail), or an HTTP client's URL with
    its password. One handler whatever the number of calls; a test's capture (``caplog``) adds its own.
    """
    import structlog

    from bot.log_redaction import redact_exceptions

    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact_exceptions,
                structlog.dev.ConsoleRenderer(colors=False),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [each for each in root.handlers if not isinstance(each, _StderrHandler)] + [handler]


def _stderr_logger(*_args: Any) -> Any:
    import structlog

    return structlog.PrintLogger(sys.stderr)


def counted(count: int, one: str, many: str) -> str:
    """"1 category", "2 categories": the plural was printed for one too ("1 commits skipped")."""
    return f"{count} {one if count == 1 else many}"


def print_error(message: str) -> None:
    """Each line of ``message`` as one red ``error:`` line on stderr, never wrapped, so it can be grepped."""
    for line in message.splitlines():
        errors.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)


def print_json(payload: Any) -> None:
    """Machine-readable output for ``--json``: plain JSON on stdout, nothing else."""
    print(json.dumps(payload, indent=2, default=str))


@contextmanager
def progress_bar(transient: bool = False) -> Iterator[Progress]:
    """A Rich progress bar on stderr, so ``--json`` output on stdout stays clean."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=errors,
        transient=transient,
    )
    with progress:
        yield progress


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar."""
    with progress_bar() as progress:
        task = progress.add_task(escape(description), total=total)
        for item in items:
            yield item
            progress.advance(task)
