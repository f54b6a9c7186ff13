"""Readers for the history interchange format (``cases-*.jsonl.gz``, ``commits-*.jsonl.gz``).

Both training and backtesting read these files directly, without a database, so
the readers return typed records. A malformed line is reported with its line
number; the caller chooses between stopping (nothing loaded) and skipping it.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from knowledge.changes import ChangeRecord
from knowledge.errors import InputError
from knowledge.ingest.patch_names import MAX_NAME_CHARS, MAX_NAMES
from knowledge.lines import capped_lines, describe_limit, json_line
from knowledge.times import IN_THE_FUTURE, in_the_future

# The shared/data/rca files' longest line is 16 KB (bodies are cut at 6,000 characters, file lists at 300).
MAX_LINE_BYTES = 4 << 20

PatchName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS)]
# Bounds a line must keep to become a row: the columns' own sizes (ids, repo, counts as 32-bit integers),
# times from 1970 to 9999, and text and list lengths far above the mined files' (bodies cut at 6,000
# characters, 300 files a commit, 334 candidates a case) but low enough that no line floods the store.
Sha = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MAX_REPO_CHARS = 200  # the changes.repo column's size
Repo = Annotated[str, StringConstraints(min_length=1, max_length=MAX_REPO_CHARS)]
MAX_PATH_CHARS = 4096  # Linux's PATH_MAX: a longer path, which a crafted git tree may hold, names no file
FilePath = Annotated[str, StringConstraints(max_length=MAX_PATH_CHARS)]
Seconds = Annotated[int, Field(ge=0, le=253_402_300_799)]  # 1970-01-01 to 9999-12-31T23:59:59Z
MAX_COUNT = 2**31 - 1  # the largest value of the Integer columns counts are stored in (PostgreSQL's integer)
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
MAX_TEXT_CHARS = 100_000
MAX_TITLE_CHARS = 10_000
MAX_AUTHOR_CHARS = 1000  # an author's name or email (the store keeps 200 of it, as a webhook's)
MAX_FILES = 10_000


class HistoryCommit(BaseModel):
    """One commit line of a ``commits-*`` file, checked before it becomes a ``ChangeRecord``."""

    model_config = ConfigDict(extra="ignore")

    repo: Repo
    sha: Sha
    author: str = Field("", max_length=MAX_AUTHOR_CHARS)
    email: str = Field("", max_length=MAX_AUTHOR_CHARS)
    author_time: Seconds
    commit_time: Seconds | None = None
    landed_time: Seconds
    landed_via_merge: bool = False
    landed_seq: int | None = None
    title: str = Field(max_length=MAX_TITLE_CHARS)
    body: str = Field("", max_length=MAX_TEXT_CHARS)
    n_files: Count = 0
    added: Count | None = 0
    deleted: Count | None = 0
    files: list[tuple[FilePath, Count | None, Count | None]] = Field([], max_length=MAX_FILES)
    dirs: list[FilePath] = Field([], max_length=MAX_FILES)
    # Optional (files written before they existed lack them: None, never read), within the bounds ``git log``
    # is read with (see ``knowledge.ingest.patch_names``): a file cannot make a change match by a flood of names.
    functions: list[PatchName] | None = Field(None, max_length=MAX_NAMES)
    identifiers: list[PatchName] | None = Field(None, max_length=MAX_NAMES)

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
            functions=tuple(self.functions or ()),
            identifiers=tuple(self.identifiers or ()),
        )

    @field_validator("landed_time")
    @classmethod
    def _landed_by_now(cls, landed: int) -> int:
        """A line landing further ahead of culprit's clock than ``CLOCK_SKEW`` is refused, as ``ingest git`` and the
        webhooks refuse such a commit: stored, a change landing in 2099 fell into every incident's window until then."""
        moment = datetime.fromtimestamp(landed, UTC)
        if in_the_future(moment):
            raise ValueError(f"{moment:%Y-%m-%dT%H:%M:%SZ} {IN_THE_FUTURE}")
        return landed

    @property
    def names_read(self) -> bool:
        """Whether the line says which names the commit touched (``[]``: read, none)."""
        return self.functions is not None and self.identifiers is not None


class CaseIncident(BaseModel):
    model_config = ConfigDict(extra="ignore")

    time: Seconds
    title: str = Field("", max_length=MAX_TITLE_CHARS)
    text: str = Field("", max_length=MAX_TEXT_CHARS)
    service: str | None = Field(None, max_length=200)

    @property
    def started_at(self) -> datetime:
        return datetime.fromtimestamp(self.time, UTC)


class CaseTruth(BaseModel):
    model_config = ConfigDict(extra="ignore")

    culprits: list[Sha] = Field(max_length=100)
    link_kind: str = Field("", max_length=50)


class HistoryCase(BaseModel):
    """One past investigation. Only ``incident``, ``candidates`` and ``window_*`` may feed a model."""

    model_config = ConfigDict(extra="ignore")

    case_id: str = Field(min_length=1, max_length=200)
    repo: Repo
    incident: CaseIncident
    window_days: int = Field(14, ge=1, le=3650)
    window_start: Seconds | None = None
    candidates: list[Sha] = Field(max_length=MAX_FILES)
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


def open_bytes(path: Path) -> BinaryIO:
    """Open a plain or gzipped file by its magic bytes, not its name."""
    if not path.exists():
        raise InputError(f"file not found: {path}")
    if path.is_dir():
        raise InputError(f"expected a file but {path} is a directory")
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else path.open("rb")


_NUL_ESCAPE = "\\u0000"


def _holds_nul(value: Any) -> bool:
    """Whether a string anywhere in a parsed line (keys too) holds a NUL: PostgreSQL refuses the whole
    batch's insert over one, so the line is refused on its own instead."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, dict):
            pending += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            pending += item
    return False


def iter_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | BadLine]]:
    """Yield (line number, object) for each non-blank line, or a BadLine where a line is over
    ``MAX_LINE_BYTES``, not UTF-8, not a JSON object, nested too deeply or holds a NUL. A damaged file (a gzip stream cut short
    or corrupt) stops the read with an :class:`InputError` that names it."""
    with open_bytes(path) as handle:
        try:
            for line_no, raw in capped_lines(handle, MAX_LINE_BYTES):
                if raw is None:
                    yield line_no, BadLine(path, line_no, f"line longer than {describe_limit(MAX_LINE_BYTES)}")
                    continue
                if not raw.strip():
                    continue
                try:
                    value = json_line(raw)
                except ValueError as error:
                    yield line_no, BadLine(path, line_no, str(error))
                    continue
                if not isinstance(value, dict):
                    yield line_no, BadLine(path, line_no, "expected a JSON object")
                    continue
                if _NUL_ESCAPE.encode() in raw and _holds_nul(value):  # JSON writes a NUL only escaped
                    yield line_no, BadLine(path, line_no, f"a text holds a NUL ({_NUL_ESCAPE}), which no database stores")
                    continue
                yield line_no, value
        except (OSError, EOFError, zlib.error) as error:
            raise InputError(f"cannot read {path}: the file is damaged ({error}); copy or export it again") from None


# The field only one kind of history line has: a line holding the other kind's instead is in the wrong file.
_ID_FIELDS = {"commits": "sha", "cases": "case_id"}


def _swapped_note(kind: str, value: dict[str, Any]) -> str:
    """A line of the other kind of file fails with pydantic's words alone (``sha: Field required``),
    which never says why: --cases and --commits are easily swapped, so say the line looks like the other kind."""
    other = "cases" if kind == "commits" else "commits"
    if _ID_FIELDS[kind] in value or _ID_FIELDS[other] not in value:
        return ""
    return f" (the line looks like a {other} file's, given as --{kind}: are --cases and --commits swapped?)"


def read_records(
    path: Path,
    kind: str,
    parse: Callable[[dict[str, Any]], T],
    key: Callable[[T], str],
    skip_bad: bool = False,
    offers_skip: bool = False,
) -> ReadResult[T]:
    """Parse every line of a ``kind`` file ("commits" or "cases") with ``parse`` (which raises pydantic's
    ValidationError on a bad one).
    Without ``skip_bad`` the first bad line stops everything; the error names ``--skip-bad`` only when
    ``offers_skip`` says the command that reads the file accepts it (``train`` and ``backtest`` do not).

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
                bad = BadLine(path, line_no, f"{where}: {first['msg']}{_swapped_note(kind, value)}")
            else:
                earlier = first_line.setdefault(key(record), line_no)
                if earlier == line_no:
                    result.records.append(record)
                else:
                    shown = key(record)[:80]
                    result.bad_lines.append(BadLine(path, line_no, f"duplicate id {shown!r} (first on line {earlier})"))
                continue
        if not skip_bad:
            raise InputError(f"{bad.path}:{bad.line_no}: {bad.reason}; nothing was loaded ({_remedy(offers_skip)})")
        result.bad_lines.append(bad)
    return result


def _remedy(offers_skip: bool) -> str:
    return "fix the line or pass --skip-bad to load the rest" if offers_skip else "fix or delete the line"


@dataclass
class CommitsRead(ReadResult[ChangeRecord]):
    names_unread: set[str] = field(default_factory=set)
    """Ids of the commits whose line lacks ``functions`` or ``identifiers``: stored as never read (NULL),
    so ``culprit ingest names`` reads them from a clone instead of taking them for commits that touched none."""


def read_commits(path: Path, skip_bad: bool = False, offers_skip: bool = False) -> CommitsRead:
    read = CommitsRead()

    def parse(value: dict[str, Any]) -> ChangeRecord:
        commit = HistoryCommit.model_validate(value)
        if not commit.names_read:
            read.names_unread.add(commit.sha)  # a duplicate line is refused, and the first one's id is the same
        return commit.record()

    parsed = read_records(path, "commits", parse, _change_id, skip_bad, offers_skip)
    read.records, read.bad_lines = parsed.records, parsed.bad_lines
    return read


def read_cases(path: Path, skip_bad: bool = False, offers_skip: bool = False) -> ReadResult[HistoryCase]:
    return read_records(path, "cases", HistoryCase.model_validate, _case_id, skip_bad, offers_skip)


def _change_id(change: ChangeRecord) -> str:
    return change.id


def _case_id(case: HistoryCase) -> str:
    return case.case_id
