"""Past investigations as the RCA pipeline sees them: an incident query and its candidate changes.

Only a case's ``incident``, ``candidates`` and ``window_*`` fields become inputs;
``truth`` is read only as the label, and ``provenance`` never.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from knowledge.changes import ChangeRecord
from knowledge.ingest.history_files import HistoryCase, read_cases, read_commits
from tools.rca.answers import IncidentQuery
from tools.rca.signals.terms import mentioned_paths

_SUBSYSTEM_PREFIX = re.compile(r"^\s*(?:[A-Za-z0-9_./+-]{1,40}(?:\s*,\s*[A-Za-z0-9_./+-]{1,40})*\s*:\s+)+")
_CODE_NAME = re.compile(r"\S*(?:_|\(\))\S*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


@dataclass
class History:
    """Cases and the commits they name, read from one or more interchange files."""

    cases: list[HistoryCase]
    commits: dict[str, ChangeRecord]

    def repos(self) -> list[str]:
        return sorted({case.repo for case in self.cases})

    def commits_before(self, cutoff: float, repo: str | None = None) -> list[ChangeRecord]:
        """Commits that had landed before ``cutoff`` (unix time): all a model may learn from."""
        return [
            commit
            for commit in self.commits.values()
            if commit.landed_time.timestamp() < cutoff and (repo is None or commit.repo == repo)
        ]


def load_history(
    case_files: Sequence[Path], commit_files: Sequence[Path], skip_bad: bool = False, offers_skip: bool = False
) -> History:
    """Read every file; cases are sorted by incident time so splits are by time. ``offers_skip``: whether
    the command reading them accepts ``--skip-bad``, so a bad line's error may tell the user to pass it."""
    cases: list[HistoryCase] = []
    commits: dict[str, ChangeRecord] = {}
    for path in commit_files:
        for commit in read_commits(Path(path), skip_bad, offers_skip).records:
            commits[commit.id] = commit
    for path in case_files:
        cases.extend(read_cases(Path(path), skip_bad, offers_skip).records)
    cases.sort(key=lambda case: (case.incident.time, case.case_id))
    return History(cases=cases, commits=commits)


def symptom_only(title: str, text: str) -> tuple[str, str]:
    """What a responder would know: the first sentence, no paths, no code names, no ``subsystem:``."""
    first = _SENTENCE_END.split(text.strip(), maxsplit=1)[0] if text.strip() else ""

    def scrub(value: str) -> str:
        value = _SUBSYSTEM_PREFIX.sub("", value)
        for path in mentioned_paths(value):
            value = value.replace(path, " ")
        value = _CODE_NAME.sub(" ", value)
        return re.sub(r"\s+", " ", value).strip()

    return scrub(title), scrub(first)


def case_query(case: HistoryCase, symptom: bool = False) -> IncidentQuery:
    """The incident as known at its start; ``symptom`` keeps only what a responder would see."""
    title, text = case.incident.title, case.incident.text
    if symptom:
        title, text = symptom_only(title, text)
    return IncidentQuery(
        text=text,
        title=title,
        started_at=case.incident.started_at,
        service=case.incident.service,
        repo=case.repo,
        incident_id=case.case_id,
    )


def case_candidates(case: HistoryCase, commits: dict[str, ChangeRecord]) -> list[ChangeRecord]:
    """The case's candidates that the commit files describe and that landed before it started, newest first.

    A file may list a change that landed later (a hand-edited or hostile file, an incident time set too
    early): shown to a model it is knowledge from after the start, marked by its negative age, which the
    live window (changes landed before the start) never holds."""
    found = [
        commits[sha] for sha in case.candidates if sha in commits and commits[sha].landed_time.timestamp() < case.incident.time
    ]
    found.sort(key=lambda change: change.landed_time, reverse=True)
    return found


def culprits(case: HistoryCase) -> set[str]:
    """The label: any of these counts as a hit."""
    return set(case.truth.culprits)


def split_by_time(cases: Iterable[HistoryCase], train_fraction: float) -> tuple[list[HistoryCase], list[HistoryCase]]:
    """Earlier cases train, later cases test, so nothing from the future leaks back."""
    ordered = sorted(cases, key=lambda case: (case.incident.time, case.case_id))
    cut = int(round(len(ordered) * train_fraction))
    return ordered[:cut], ordered[cut:]
