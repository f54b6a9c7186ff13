"""Training history read from the store: incidents with confirmed causes, and the changes before them.

This is what the next model learns from. Its labels are the ``RootCause`` rows
whose source is a label (:data:`tools.feedback.confirmations.LABEL_SOURCES`):
past investigations, postmortems, a confirmer's or the incident commander's
confirmation, two agreeing 👍 in an incident channel. A single vote is never
one, so no one click changes what the next model is taught.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from knowledge.changes import Change, ChangeRecord
from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.incidents import Incident, RootCause, first_description
from knowledge.ingest.history_files import CaseIncident, CaseTruth, HistoryCase
from knowledge.ingest.mining import atomic_gzip, commit_row, file_stem
from knowledge.ingest.progress import Progress, Silent
from knowledge.wiki.postmortems import SOURCE as POSTMORTEM
from tools.feedback.confirmations import LABEL_SOURCES
from tools.rca.history.cases import History


def training_labels(database_url: str) -> dict[str, set[str]]:
    """Incident id -> the changes confirmed as its cause: every label the next model gets."""
    labels: dict[str, set[str]] = defaultdict(set)
    with session_scope(database_url) as session:
        for incident_id, change_id in session.execute(
            select(RootCause.incident_id, RootCause.change_id).where(RootCause.source.in_(LABEL_SOURCES))
        ):
            labels[incident_id].add(change_id)
    return dict(labels)


NOTHING_CONFIRMED = (
    "no incident in the store has a confirmed root cause yet: confirm causes (a confirmer's ✅ in Slack, "
    "`culprit feedback confirm INCIDENT CHANGE --by NAME`) or load past investigations with "
    "`culprit ingest history`, then export again"
)


def store_history(database_url: str, window_days: int = 14, progress: Progress | None = None) -> History:
    """Each labelled incident as a case whose candidates are its repository's changes in the window before it.

    The incident reads as it was known at its start (:func:`_known_at_start`)."""
    progress = progress or Silent()
    labels = training_labels(database_url)
    cases: list[HistoryCase] = []
    commits: dict[str, ChangeRecord] = {}
    with session_scope(database_url) as session:
        incidents = session.scalars(select(Incident).where(Incident.id.in_(list(labels)))).all()
        cause_repos = dict(session.execute(select(Change.id, Change.repo).where(Change.id.in_({c for s in labels.values() for c in s}))).all())
        progress.start("reading incidents with confirmed causes", total=len(incidents))
        for incident in incidents:
            progress.advance()
            repo = incident.repo or next((cause_repos[c] for c in sorted(labels[incident.id]) if c in cause_repos), None)
            if repo is None:
                continue  # its cause was never ingested: nothing to learn from
            start = incident.started_at - timedelta(days=window_days)
            window = session.scalars(
                select(Change)
                .where(Change.repo == repo, Change.landed_time >= start, Change.landed_time < incident.started_at)
                .options(selectinload(Change.files))
            ).all()
            for change in window:
                commits.setdefault(change.id, change.record())
            cases.append(
                HistoryCase(
                    case_id=incident.id,
                    repo=repo,
                    incident=CaseIncident(
                        time=int(incident.started_at.timestamp()),
                        title=incident.title,
                        text=_known_at_start(incident),
                        service=incident.service,
                    ),
                    window_days=window_days,
                    candidates=[change.id for change in window],
                    truth=CaseTruth(culprits=sorted(labels[incident.id])),
                )
            )
    cases.sort(key=lambda case: (case.incident.time, case.case_id))
    return History(cases=cases, commits=commits)


def confirmed_history(database_url: str, window_days: int = 14, progress: Progress | None = None) -> History:
    """:func:`store_history` for an export, which has nothing to write before a cause is confirmed."""
    history = store_history(database_url, window_days, progress)
    if not history.cases:
        raise InputError(NOTHING_CONFIRMED)
    return history


def write_history_files(history: History, out_dir: Path, progress: Progress | None = None) -> list[str]:
    """One ``cases-*``/``commits-*.jsonl.gz`` pair per repository, in the format ``culprit history mine`` writes.

    Commit authors' names and e-mails are left out: no model reads them, and the files are made to leave
    the store (to a fine-tuning pipeline, another team's backtest)."""
    progress = progress or Silent()
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} is a file: give a folder to write the history files into")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for repo in history.repos():
        commits = sorted(
            (commit for commit in history.commits.values() if commit.repo == repo),
            key=lambda commit: (commit.landed_time, commit.id),
        )
        cases_path, commits_path = (out_dir / f"{kind}-{file_stem(repo)}.jsonl.gz" for kind in ("cases", "commits"))
        progress.start(f"writing {len(commits)} changes of {repo}", total=len(commits))
        with atomic_gzip(commits_path) as handle:
            for seq, commit in enumerate(commits):
                row = {**commit_row(commit, seq), "author": "", "email": ""}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                progress.advance()
        with atomic_gzip(cases_path) as handle:
            for case in history.cases:
                if case.repo == repo:
                    handle.write(json.dumps(case.model_dump(mode="json"), ensure_ascii=False) + "\n")
        written += [str(cases_path), str(commits_path)]
    return written


def _known_at_start(incident: Incident) -> str:
    """The incident's text as known when it started, which a model must not learn to lean on more than that.

    A re-run stores the channel's later messages after the first description (suspects named, the fix
    found): they are cut. An incident only its postmortem told of has the postmortem's body as its text,
    written after the fact and naming the cause and its title: it keeps its title alone."""
    return "" if incident.source == POSTMORTEM else first_description(incident.text)
