"""Readers for the history interchange format (``cases-*.jsonl.gz``, ``commits-*.jsonl.gz``).

Both training and backtesting read these files directly, without a database, so
the readers return typed records. A malformed line is reported with its line
number; the caller chooses between stopping (nothing loaded) and skipping it.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Generic, TextIO, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from knowledge.changes import ChangeRecord
from knowledge.errors import InputError
from knowledge.ingest.patch_names import MAX_NAME_CHARS, MAX_NAMES

PatchName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS)]


class HistoryCommit(BaseModel):
    """One commit line of a ``commits-*`` file, checked before it becomes a ``ChangeRecord``."""

    model_config = ConfigDict(extra="ignore")

    repo: str
    sha: str
    author: str = ""
    email: str = ""
    author_time: int
    commit_time: int | None = None
    landed_time: int
    landed_via_merge: bool = False
    landed_seq: int | None = None
    title: str
    body: str = ""
    n_files: int = 0
    added: int | None = 0
    deleted: int | None = 0
    files: list[tuple[str, int | None, int | None]] = []
    dirs: list[str] = []
    # Optional (files written before they existed lack them), within the bounds ``git log`` is read
    # with (see ``knowledge.ingest.patch_names``): a file cannot make a change match by a flood of names.
    functions: list[PatchName] = Field([], max_length=MAX_NAMES)
    identifiers: list[PatchName] = Field([], max_length=MAX_NAMES)

    def record(self) -> ChangeRecord:
        return ChangeRecord(
            id=self.sha,
            repo=self.repo,
            title=self.title,
            body=self.body,
            author=self.author,
            email=self.email,
            author_time=datetime.fromtimestamp(self.author_time, UTC),
            landed_time=datetime.fromtimestamp(self.landed_time, UTC),
            landed_via_merge=self.landed_via_merge,
            files=tuple(self.files),
            n_files=self.n_files,
            added=self.added or 0,
            deleted=self.deleted or 0,
            directories=tuple(self.dirs),
            functions=tuple(self.functions),
            identifiers=tuple(self.identifiers),
        )


class CaseIncident(BaseModel):
    model_config = ConfigDict(extra="ignore")

    time: int
    title: str = ""
    text: str = ""
    service: str | None = None

    @property
    def started_at(self) -> datetime:
        return datetime.fromtimestamp(self.time, UTC)


class CaseTruth(BaseModel):
    model_config = ConfigDict(extra="ignore")

    culprits: list[str]
    link_kind: str = ""


class HistoryCase(BaseModel):
    """One past investigation. Only ``incident``, ``candidates`` and ``window_*`` may feed a model."""

    model_config = ConfigDict(extra="ignore")

    case_id: str
    repo: str
    incident: CaseIncident
    window_days: int = 14
    window_start: int | None = None
    candidates: list[str]
    truth: CaseTruth


@dataclass
class BadLine:
    """Where a file could not be read, for the error report."""

    path: Path
    line_no: int
    reason: str


T = TypeVar("T")


@dataclass
class ReadResult(Generic[T]):
    records: list[T] = field(default_factory=list)
    bad_lines: list[BadLine] = field(default_factory=list)


def open_text(path: Path) -> TextIO:
    """Open plain or gzipped text by its magic bytes, not its name."""
    if not path.exists():
        raise InputError(f"file not found: {path}")
    if path.is_dir():
        raise InputError(f"expected a file but {path} is a directory")
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def iter_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | BadLine]]:
    """Yield (line number, object) for each non-blank line, or a BadLine where JSON fails."""
    with open_text(path) as handle:
        try:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as error:
                    yield line_no, BadLine(path, line_no, f"invalid JSON ({error.msg})")
                    continue
                if not isinstance(value, dict):
                    yield line_no, BadLine(path, line_no, "expected a JSON object")
                    continue
                yield line_no, value
        except (OSError, EOFError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read {path}: {error}") from error


def read_records(
    path: Path, parse: Callable[[dict[str, Any]], T], key: Callable[[T], str], skip_bad: bool = False
) -> ReadResult[T]:
    """Parse every line with ``parse`` (which raises pydantic's ValidationError on a bad one).
    Without ``skip_bad`` the first bad line stops everything.

    A line repeating an earlier line's ``key`` (a sha, a case id) is left out and
    reported, never stored twice, whatever ``skip_bad`` says: the file's first
    word on that id stands."""
    result: ReadResult[T] = ReadResult()
    first_line: dict[str, int] = {}
    for line_no, value in iter_json_lines(path):
        if isinstance(value, BadLine):
            bad = value
        else:
            try:
                record = parse(value)
            except ValidationError as error:
                first = error.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                bad = BadLine(path, line_no, f"{where}: {first['msg']}")
            else:
                earlier = first_line.setdefault(key(record), line_no)
                if earlier == line_no:
                    result.records.append(record)
                else:
                    shown = key(record)[:80]
                    result.bad_lines.append(BadLine(path, line_no, f"duplicate id {shown!r} (first on line {earlier})"))
                continue
        if not skip_bad:
            raise InputError(
                f"{bad.path}:{bad.line_no}: {bad.reason}; nothing was loaded "
                "(fix the line or pass --skip-bad to load the rest)"
            )
        result.bad_lines.append(bad)
    return result


def read_commits(path: Path, skip_bad: bool = False) -> ReadResult[ChangeRecord]:
    return read_records(path, lambda value: HistoryCommit.model_validate(value).record(), _change_id, skip_bad)


def read_cases(path: Path, skip_bad: bool = False) -> ReadResult[HistoryCase]:
    return read_records(path, HistoryCase.model_validate, _case_id, skip_bad)


def _change_id(change: ChangeRecord) -> str:
    return change.id


def _case_id(case: HistoryCase) -> str:
    return case.case_id
