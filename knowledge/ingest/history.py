"""Past investigations from the history interchange files (``commits-*``, ``cases-*``).

Commits become changes and cases become incidents with their confirmed root
causes, which is what the ranker learns from and what backtests replay.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import insert, select

from knowledge.db import session_scope
from knowledge.ingest.history_files import HistoryCase, ReadResult, read_cases, read_commits
from knowledge.incidents import Incident, RootCause
from knowledge.ingest.change_store import BATCH_SIZE, store_changes
from knowledge.ingest.progress import Progress, Silent
from knowledge.ingest.report import LoadReport

R = TypeVar("R", bound=ReadResult[Any])


def _read(
    path: Path,
    reader: Callable[[Path, bool, bool], R],
    kind: str,
    skip_bad: bool,
    progress: Progress,
) -> tuple[R, LoadReport]:
    """Read a whole file first, so without ``skip_bad`` a bad line stops the load before any write."""
    progress.start(f"reading {path.name}")
    read = reader(path, skip_bad, True)  # ``culprit ingest history`` offers --skip-bad
    report = LoadReport(kind=kind, source=str(path))
    report.note_bad_lines(read.bad_lines)
    progress.start(f"storing {kind} from {path.name}", total=len(read.records))
    return read, report


def ingest_commits(
    path: Path, url: str, skip_bad: bool = False, progress: Progress | None = None
) -> LoadReport:
    """Store the commits of one ``commits-*`` file; without ``skip_bad`` one bad line loads nothing."""
    progress = progress or Silent()
    read, report = _read(path, read_commits, "changes", skip_bad, progress)
    report.new, report.already_present = store_changes(url, read.records, progress, names_unread=read.names_unread)
    return report


def _incident_row(case: HistoryCase, redact: Callable[[str], str]) -> dict[str, object]:
    return {
        "id": case.case_id,
        "source": "history",
        "repo": case.repo,
        "title": redact(case.incident.title),
        "text": redact(case.incident.text),
        "started_at": case.incident.started_at,
        "service": case.incident.service,
    }


def ingest_cases(
    path: Path, url: str, redact: Callable[[str], str], skip_bad: bool = False, progress: Progress | None = None
) -> LoadReport:
    """Store each case as an incident with its culprits as confirmed root causes.

    Each title and text passes through ``redact`` first, as an answered incident's do
    (``tools.rca.store.stored_words``, which the callers pass: this tier cannot import it): retraining
    reads stored incidents into a model file, and a case's words are a bug tracker's or a mailing
    list's, e-mails, IPs and tokens included. The files themselves are read as they are (``culprit
    train`` and ``culprit backtest`` read them, not the store)."""
    progress = progress or Silent()
    read, report = _read(path, read_cases, "incidents", skip_bad, progress)
    cases = read.records
    seen: set[str] = set()
    for start in range(0, len(cases), BATCH_SIZE):
        batch = cases[start : start + BATCH_SIZE]
        with session_scope(url) as session:
            stored = set(
                session.scalars(select(Incident.id).where(Incident.id.in_([case.case_id for case in batch])))
            )
            fresh = [case for case in batch if case.case_id not in stored and case.case_id not in seen]
            seen.update(case.case_id for case in fresh)
            if fresh:
                session.execute(insert(Incident), [_incident_row(case, redact) for case in fresh])
                causes = [
                    {"incident_id": case.case_id, "change_id": culprit, "source": "history"}
                    for case in fresh
                    for culprit in dict.fromkeys(case.truth.culprits)
                ]
                if causes:
                    session.execute(insert(RootCause), causes)
        report.new += len(fresh)
        report.already_present += len(batch) - len(fresh)
        progress.advance(len(batch))
    return report
