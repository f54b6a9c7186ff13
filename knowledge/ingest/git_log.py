"""Changes from a real git repository, with the time each one reached the main line.

Two streaming ``git`` calls whatever the size of the history: ``git rev-list``
for the commit graph (cheap, used to find when each commit landed) and one
``git log --numstat --patch`` for the commits not stored yet (line counts, and
the names their patches hold: :mod:`knowledge.ingest.patch_names`). Both read only what landed
since the branch's remembered tip (:mod:`knowledge.ingest.git_tips`), unless that
tip is no longer an ancestor (a force-push) or the stored changes cover another
``since``: then the whole history is read again and nothing is stored twice.
"""

from __future__ import annotations

import codecs
import posixpath
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, ClassVar
from urllib.parse import urlsplit

import structlog

from knowledge.changes import ChangeRecord, FileStat, existing_change_ids
from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.ingest.bounded_pipe import BoundedPipe, DidNotExit, Stalled, Stopping, end_child, run_child, start_child
from knowledge.ingest.bounded_pipe import stopping
from knowledge.ingest.change_store import drop_partial_changes, refresh_statistics, store_changes
from knowledge.ingest.history_files import (
    MAX_AUTHOR_CHARS,
    MAX_COUNT,
    MAX_FILES,
    MAX_PATH_CHARS,
    MAX_REPO_CHARS,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
)
from knowledge.ingest.patch_names import MAX_PATCH_BYTES, patch_names
from knowledge.ingest.git_tips import MAX_BRANCH_CHARS, Tip, remember_tip, remembered_tip
from knowledge.ingest.progress import Progress, Silent
from knowledge.ingest.report import LoadReport
from knowledge.times import IN_THE_FUTURE, in_the_future

log = structlog.get_logger(__name__)

_RECORD = "\x1e"
# Header fields end in a newline: a commit's author line ends at one, so no field but the message (last) can
# hold one, while a name or email may hold any other character git was given (\x1f included).
_FIELD = "\n"
_LOG_FORMAT = "%x1e%H%n%an%n%ae%n%at%n%B"
LOG_IN_UTF8 = "--encoding=UTF-8"
"""Every ``git log`` read as UTF-8 asks for it: git otherwise writes in the clone's ``i18n.logOutputEncoding``
(default ``i18n.commitEncoding``), so a team's ISO-8859-1 or Shift_JIS clone stored names and titles as U+FFFD."""


def git_text(data: bytes, bound: int | None = None) -> str:
    """One field of git's output (a name, a message, a path) as text: UTF-8, or else cp1252 as gitweb reads it
    (Latin-1 when the field holds one of the five bytes cp1252 leaves undefined).

    ``--encoding=UTF-8`` converts only what a commit's encoding header names; old histories hold Latin-1
    names and messages with no header, which a UTF-8 read stored as U+FFFD. A field read up to ``bound``
    bytes may end inside a UTF-8 character: that broken tail is dropped, not taken for Latin-1.
    """
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(data, final=bound is None or len(data) < bound)
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


# What is read of a commit's header fields (sha, name, email, time) and message: enough for the characters
# kept of them (MAX_AUTHOR_CHARS; MAX_TITLE_CHARS and MAX_TEXT_CHARS, with room for a long first paragraph),
# four bytes each; the rest of a name or message of hundreds of megabytes streams past.
_FIELD_BYTES = 4 * (MAX_AUTHOR_CHARS + 1)
_MESSAGE_BYTES = 4 * (2 * MAX_TITLE_CHARS + MAX_TEXT_CHARS + 1)
_CHUNK = 1 << 20
_BLANK = b" \t\n\r\v\f"
FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
"""A full SHA-1 or SHA-256 commit id as git prints it: the only form a stored sha is handed to git in."""
_NUMSTAT = re.compile(r"\n?(\d+|-)\t(\d+|-)\t(.*)", re.DOTALL)
# Commit dates are whatever the committer's clock or tool wrote: only 1970 to 9999 is a time culprit stores.
_LATEST = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class Landing:
    """When a commit reached the main line, and whether a merge brought it there."""

    time: datetime
    via_merge: bool


@dataclass(frozen=True)
class Mainline:
    """The commit graph reduced to what ingestion needs: landing times and which commits are merges."""

    landings: dict[str, Landing]
    merges: set[str]
    # Commits that cannot be placed on the line (their date, or the merge's that brought them, is unusable), with why.
    refused: dict[str, str] = field(default_factory=dict)
    # Commits dated ahead of culprit's clock (theirs, or the merge's that brought them), placed when read, with why.
    landed_when_read: dict[str, str] = field(default_factory=dict)


@dataclass
class _Files:
    """A commit's files as ``--numstat`` lists them: the first ``MAX_FILES`` kept (as a webhook's or a history
    file's are), every one counted, so a commit touching a million files is one change of its true size,
    not a million rows. A path over ``MAX_PATH_CHARS`` (no file anyone can check out) is counted, not kept.
    Line counts (a generated file's billions of lines) stop at ``MAX_COUNT``, the most their columns hold:
    one past it failed the whole batch of changes it was stored with."""

    kept: list[FileStat] = field(default_factory=list)
    count: int = 0
    added: int = 0
    deleted: int = 0

    def add(self, path: str, added: int | None, deleted: int | None) -> None:
        added, deleted = _at_most_count(added), _at_most_count(deleted)
        self.count = min(self.count + 1, MAX_COUNT)
        self.added = min(self.added + (added or 0), MAX_COUNT)
        self.deleted = min(self.deleted + (deleted or 0), MAX_COUNT)
        if len(self.kept) < MAX_FILES and len(path) <= MAX_PATH_CHARS:
            self.kept.append((path, added, deleted))


def _at_most_count(lines: int | None) -> int | None:
    return None if lines is None else min(lines, MAX_COUNT)


@dataclass
class GitLoadReport(LoadReport):
    """A load's counts, plus how much of the history it had to read to find them."""

    commits_read: int = 0
    full_read: bool = True
    landed_when_read: list[str] = field(default_factory=list)  # "commit <sha>: why", dated ahead of culprit's clock
    skipped_what: ClassVar[tuple[str, str]] = ("commit", "commits")

    def notes(self) -> list[str]:
        return self.landed_when_read


GIT_TIMEOUT_S = 120
"""Longest a short git command (rev-parse, config, merge-base) may take: they answer in seconds even on a
large history, while a repository whose alternates file or config include is a pipe nobody writes, or on a
hung mount, would hold the ingestion for ever. ``git log`` and ``rev-list`` stream: ``GIT_SILENCE_S`` bounds them."""

GIT_SILENCE_S = 120
"""Longest a streaming git command (log, rev-list, cat-file) may go without printing a byte. However long the
history, they print as they walk it, while one that opens an object or alternates file that is a pipe nobody
writes, or on a hung mount, prints nothing more and would hold ``ingest git`` and the poller for ever."""


class GitTimedOut(InputError):
    """A short git command ran past ``GIT_TIMEOUT_S``, or a streaming one fell silent for ``GIT_SILENCE_S``:
    the repository is broken or hostile, not merely missing a branch, so callers that turn a git failure
    into "not found" let this one through."""


class GitStopped(InputError):
    """``culprit serve`` is exiting: git was not started, or was killed, by ``stop_fetches``. The repository is
    not at fault, so callers that turn a git failure into "not found" let this one through."""

    def __init__(self, repo: Path, command: str, what: str) -> None:
        super().__init__(f"git {command} in {repo} {what}: culprit is shutting down")


def _run_git(repo: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a short git command, bounded by ``GIT_TIMEOUT_S``: past it, an InputError naming the repository.
    ``culprit serve`` kills it as it exits, and starts none after, as it does the streaming ones (:func:`_running`):
    a ``git rev-parse`` stuck on a hung mount outlived the bot."""
    if shutil.which("git") is None:
        raise InputError("git is not installed or not on PATH; install git to ingest a repository")
    try:
        completed = run_child(["git", "-C", str(repo), *args], GIT_TIMEOUT_S, text=True, errors="replace")
    except Stopping:
        raise GitStopped(repo, args[0], "not started") from None
    except subprocess.TimeoutExpired:
        raise GitTimedOut(
            f"git {args[0]} in {repo} took over {GIT_TIMEOUT_S} s (GIT_TIMEOUT_S); check the repository for a hung "
            "mount, or an objects/info/alternates file or config include that never answers"
        ) from None
    if completed.returncode != 0 and stopping():
        raise GitStopped(repo, args[0], "stopped")
    return completed


def _git(repo: Path, *args: str) -> str:
    """Run a short git command; its failure is the user's (wrong path, unknown branch)."""
    completed = _run_git(repo, list(args))
    if completed.returncode != 0:
        reason = completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "git failed"
        raise InputError(f"git {' '.join(args)} failed in {repo}: {reason}")
    return completed.stdout


def check_repository(path: Path) -> None:
    """Fail with a clear message unless ``path`` is a git repository (work tree or bare)."""
    if not path.exists():
        raise InputError(f"repository not found: {path}")
    if not path.is_dir():
        raise InputError(f"expected a git repository directory but {path} is a file")
    try:
        _git(path, "rev-parse", "--git-dir")
    except (GitTimedOut, GitStopped):
        raise
    except InputError:
        raise InputError(f"{path} is not a git repository (run `git init` or give the clone's path)") from None


def repository_name(path: Path) -> str:
    """``owner/name`` from the origin remote as the history files name repos (``name`` where its path has
    one part), else the folder name."""
    origin = _run_git(path, ["config", "--get", "remote.origin.url"]).stdout.strip()
    if parts := _origin_path(origin):
        return "/".join(parts[-2:])
    top = _git(path, "rev-parse", "--show-toplevel").strip() if _is_work_tree(path) else ""
    return Path(top or path.resolve()).name.removesuffix(".git")


def _origin_path(origin: str) -> list[str]:
    """The parts of a remote URL's path (``https://host/owner/name.git``, ``ssh://host:2222/name``, scp-like
    ``git@host:owner/name``), without ``.git``: never its host, port or credentials (a CI clone's
    ``https://ci:TOKEN@host/name`` named the repository after its token); nothing for a local path."""
    if "://" in origin:
        try:
            remote_path = urlsplit(origin).path
        except ValueError:  # an unclosed IPv6 bracket
            return []
    elif scp_like := re.match(r"^[\w.-]+@[\w.-]+:", origin):
        remote_path = origin[scp_like.end() :]
    else:
        return []
    return [part for part in remote_path.strip("/").removesuffix(".git").split("/") if part]


def _is_work_tree(path: Path) -> bool:
    return _git(path, "rev-parse", "--is-bare-repository").strip() == "false"


@contextmanager
def _running(repo: Path, args: list[str], stdin: IO[bytes] | None = None) -> Iterator[BoundedPipe]:
    """The stdout of a long-running git command; its failure, once the output is read, is an
    InputError (stderr goes to a file so a chatty git cannot fill a pipe nobody reads and stall),
    as is its silence past ``GIT_SILENCE_S``, or its not exiting within it once the output ended
    (git is killed). ``culprit serve`` kills it as it exits, and starts none after
    (:func:`knowledge.sources.mirrors.stop_fetches`): a poll ingesting a mirror on a hung mount outlived the bot."""
    errors = tempfile.TemporaryFile()
    try:
        process = start_child(["git", "-C", str(repo), *args], stdin=stdin, stdout=subprocess.PIPE, stderr=errors)
    except Stopping:
        errors.close()
        raise GitStopped(repo, args[0], "not started") from None
    assert process.stdout is not None
    try:
        pipe = BoundedPipe(process.stdout, GIT_SILENCE_S)
        yield pipe
        if pipe.exit_status(process) != 0:
            if stopping():
                raise GitStopped(repo, args[0], "stopped")
            errors.seek(0)
            message = errors.read().decode("utf-8", errors="replace").strip()
            raise InputError(f"git {args[0]} failed in {repo}: {message or 'no message'}")
    except Stalled as stalled:
        raise _timed_out(repo, args[0], stalled) from None
    finally:
        end_child(process)
        process.stdout.close()
        errors.close()


def _timed_out(repo: Path, command: str, stalled: Stalled) -> GitTimedOut:
    """What a streaming git that stalled did, naming the repository and where to look."""
    if isinstance(stalled, DidNotExit):
        return GitTimedOut(
            f"git {command} in {repo} ended its output but did not exit within {GIT_SILENCE_S} s (GIT_SILENCE_S); "
            "check the repository for a hung mount"
        )
    return GitTimedOut(
        f"git {command} in {repo} printed nothing for {GIT_SILENCE_S} s (GIT_SILENCE_S); check the "
        "repository for a hung mount, or an object or objects/info/alternates file that never answers"
    )


def _stream(
    repo: Path, args: list[str], stdin: IO[bytes] | None = None, separator: bytes = b"\n", keep: int | None = None
) -> Iterator[str]:
    """Tokens of a long-running git command's output, read as they come; each cut to its first ``keep`` bytes
    while it is read, so a token of hundreds of megabytes (a commit message) streams past, never held whole."""
    with _running(repo, args, stdin) as pipe:
        output = _Output(pipe)
        while output.peek():
            yield output.until(separator, keep)[0].decode("utf-8", errors="replace")


class _Output:
    """A git command's output consumed up to separators, keeping a bounded part where asked,
    so one commit's huge patch passes through without being held in memory."""

    def __init__(self, stream: BoundedPipe) -> None:
        self._stream = stream
        self._buffer = b""
        self._position = 0

    def _fill(self) -> bool:
        chunk = self._stream.read(_CHUNK)
        if not chunk:
            return False
        self._buffer = self._buffer[self._position :] + chunk
        self._position = 0
        return True

    def peek(self) -> bytes:
        """The next byte, not consumed (b"" at the end)."""
        if self._position >= len(self._buffer) and not self._fill():
            return b""
        return self._buffer[self._position : self._position + 1]

    def skip(self, ignored: bytes) -> None:
        """Consume the bytes in ``ignored`` up to the first that is not one (or the end), streaming them past."""
        while True:
            rest = self._buffer[self._position :].lstrip(ignored)
            self._position = len(self._buffer) - len(rest)
            if rest or not self._fill():
                return

    def until(self, separator: bytes, keep: int | None = None) -> tuple[bytes, bool]:
        """The bytes before the next ``separator`` (at most ``keep`` of them), consuming both;
        and whether the separator came (False: the output ended)."""
        kept: list[bytes] = []
        room = keep
        while True:
            found = self._buffer.find(separator, self._position)
            # Without a match, a separator may straddle the next chunk: leave its possible start.
            end = found if found >= 0 else max(self._position, len(self._buffer) - len(separator) + 1)
            if room is None or room > 0:
                piece = self._buffer[self._position : end if room is None else min(end, self._position + room)]
                kept.append(piece)
                room = None if room is None else room - len(piece)
            if found >= 0:
                self._position = found + len(separator)
                return b"".join(kept), True
            self._position = end
            if not self._fill():
                if room is None or room > 0:
                    kept.append(self._buffer[self._position :][: room])
                self._position = len(self._buffer)
                return b"".join(kept), False


def read_mainline(repo: Path, tip: str, after: str | None = None) -> Mainline:
    """Landing times along the first-parent line of the commit ``tip``, for the commits
    that are not ancestors of ``after`` (all of them without it).

    A commit on that line lands at its own commit time; commits brought in by a
    merge on it land at the merge's commit time. Walking the line oldest first,
    everything an earlier merge brought is already placed, so each commit is
    visited once. Leaving out the ancestors of ``after`` changes no landing:
    they are all the line reaches past ``after``'s side, and no merge before it
    brought anything newer.
    """
    parents: dict[str, list[str]] = {}
    commit_times: dict[str, str] = {}
    revisions = f"{after}..{tip}" if after else tip
    for line in _stream(repo, ["rev-list", "--parents", "--timestamp", revisions, "--"]):
        if not line:
            continue
        timestamp, sha, *commit_parents = line.split()
        commit_times[sha] = timestamp
        parents[sha] = commit_parents
    line_of_first_parents: list[str] = []
    current: str | None = tip
    while current is not None and current in parents:
        line_of_first_parents.append(current)
        current = parents[current][0] if parents[current] else None
    landings: dict[str, Landing] = {}
    refused: dict[str, str] = {}
    moved: dict[str, str] = {}
    read_at = datetime.now(UTC)
    for sha in line_of_first_parents:
        time, why = _landing_time(commit_times[sha], read_at)
        if time is None:
            refused[sha] = why
        else:
            landings[sha] = Landing(time, via_merge=False)
            if why:
                moved[sha] = why
    for merge in reversed(line_of_first_parents):
        time, why = _landing_time(commit_times[merge], read_at)
        stack = list(parents[merge][1:])
        while stack:
            sha = stack.pop()
            if sha in landings or sha in refused or sha not in parents:
                continue
            if time is None:
                refused[sha] = f"brought in by merge {merge}, whose {why}"
            else:
                landings[sha] = Landing(time, via_merge=True)
                if why:
                    moved[sha] = f"brought in by merge {merge}, whose {why}"
            stack.extend(parents[sha])
    merges = {sha for sha, commit_parents in parents.items() if len(commit_parents) > 1}
    return Mainline(landings, merges, {sha: why for sha, why in refused.items() if sha not in merges},
                    {sha: why for sha, why in moved.items() if sha not in merges})


def _utc(seconds: str) -> datetime | None:
    """The time git printed as seconds since 1970, or None when it is not one from 1970 to 9999."""
    if not seconds.isdigit() or int(seconds) > _LATEST:
        return None
    return datetime.fromtimestamp(int(seconds), UTC)


def _landing_time(printed: str, read_at: datetime) -> tuple[datetime | None, str]:
    """The commit date git printed as a landing time, and why it is not that date, if it is not: None for a
    time not from 1970 to 9999; ``read_at`` for one further ahead of culprit's clock than ``CLOCK_SKEW`` (a
    committer's wrong clock). Stored at its own date, a commit dated 2099 would fall into every incident's
    window and rank as a suspect until then; left out, it would be lost for good (the remembered tip moves
    past it). It was on the branch when culprit read it, so it landed by then."""
    time = _utc(printed)
    if time is None:
        return None, _bad_date("commit date", printed)
    if in_the_future(time):
        return read_at, (f"commit date {time:%Y-%m-%dT%H:%M:%SZ} {IN_THE_FUTURE}; "
                         f"stored as landing when culprit read it, {read_at:%Y-%m-%dT%H:%M:%SZ}")
    return time, ""


def _bad_date(what: str, printed: str) -> str:
    shown = printed[:30] or "(none)"
    return f"{what} {shown} is not a time from 1970 to 9999; the commit is not stored"


def split_message(message: str) -> tuple[str, str]:
    """Title and body as ``%s``/``%b`` would give them: the first paragraph joined into one line; each cut
    to the bounds a history file's line keeps, so a message of megabytes is neither stored whole nor
    mined into a line ``ingest history`` refuses."""
    paragraphs = message.strip().split("\n\n", 1)
    title = " ".join(line.strip() for line in paragraphs[0].splitlines())
    body = paragraphs[1].strip() if len(paragraphs) > 1 else ""
    return title[:MAX_TITLE_CHARS], body[:MAX_TEXT_CHARS]


def read_changes(
    repo: Path, shas: list[str], repo_name: str, mainline: Mainline, refused: dict[str, str] | None = None
) -> Iterator[ChangeRecord]:
    """The listed commits with per-file line counts, the functions they touched and the identifiers
    they added or removed (:mod:`knowledge.ingest.patch_names`), from one ``git log --no-walk --stdin``.

    One line of context, not none: without context git aligns a few diffs differently, and
    their line counts with them (161 of curl's 148,550 file counts moved by one); with one
    they are exactly those of a plain ``--numstat``.

    A commit whose author date is not a time from 1970 to 9999 is left out with its reason
    in ``refused``; without ``refused`` it stops the read as an :class:`InputError`. One that
    touched more than ``MAX_FILES`` files keeps the first of them, and none whose path is over
    ``MAX_PATH_CHARS``; the cut is logged."""
    for header, files, patch in _listed_commits(repo, shas):
        authored = _utc(header[3])
        if authored is None:
            reason = _bad_date("author date", header[3])
            if refused is None:
                raise InputError(f"commit {header[0]} in {repo}: {reason}")
            refused[header[0]] = reason
            continue
        if files.count > len(files.kept):
            log.warning("change file list cut", repo=repo_name, change=header[0], files=files.count,
                        kept=len(files.kept))  # fmt: skip
        yield _record(header, authored, files, patch, repo_name, mainline)


def read_patch_names(repo: Path, shas: list[str]) -> Iterator[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(sha, functions touched, identifiers added or removed) of each listed commit, read exactly as
    :func:`read_changes` reads them, for changes stored before their names were (``ingest names``).

    Every sha must be a full commit id present in ``repo`` (``git log`` stops at the first
    that is not): :func:`commits_present` tells which are."""
    for header, _files, patch in _listed_commits(repo, shas):
        yield header[0], *patch_names(patch)


def _listed_commits(repo: Path, shas: list[str]) -> Iterator[tuple[list[str], _Files, bytes]]:
    """The records of one ``git log --no-walk --stdin`` of ``shas`` (given on stdin, never as arguments)."""
    if not shas:
        return  # with nothing on stdin git would log HEAD
    with tempfile.TemporaryFile() as revisions:
        revisions.write("".join(f"{sha}\n" for sha in shas).encode())
        revisions.seek(0)
        args = [
            "log", "--no-walk=unsorted", "--stdin", "--numstat", "--patch", "--unified=1", "-z", "--no-renames",
            "--no-ext-diff", "--no-textconv", "--no-color", LOG_IN_UTF8, f"--format={_LOG_FORMAT}",
        ]  # fmt: skip
        with _running(repo, args, stdin=revisions) as stream:
            yield from _log_records(_Output(stream))


def commits_present(repo: Path, shas: list[str]) -> set[str]:
    """The shas among ``shas`` that name a commit in ``repo`` (one ``git cat-file --batch-check``).

    Each must already be a full hex object id: given on stdin, anything else
    (``HEAD~1``, ``main:path``) would be resolved as a revision expression."""
    if not shas:
        return set()
    if bad := next((sha for sha in shas if not FULL_SHA.fullmatch(sha)), None):
        raise ValueError(f"not a full commit id: {bad[:80]!r}")
    with tempfile.TemporaryFile() as names:
        names.write("".join(f"{sha}\n" for sha in shas).encode())
        names.seek(0)
        # %(objectname) is the full id even for the input a "missing" line echoes; only commits count.
        lines = _stream(repo, ["cat-file", "--batch-check=%(objectname) %(objecttype)"], stdin=names)
        return {line.split(" ", 1)[0] for line in lines if line.endswith(" commit")}


def _log_records(output: _Output) -> Iterator[tuple[list[str], _Files, bytes]]:
    """(header fields, files, patch) per commit of ``git log -z --numstat --patch``: each record is
    \\x1e, the header (its fields and message only read up to ``_FIELD_BYTES`` and ``_MESSAGE_BYTES``), NUL;
    then, if it touched files, one NUL-ended numstat line per file, an
    empty one, and the patch up to the next record (only its first ``MAX_PATCH_BYTES`` kept)."""
    record = _RECORD.encode()
    if output.until(record)[0]:
        raise InputError("git log printed something before the first commit")
    more = output.peek() != b""
    while more:
        fields = [output.until(_FIELD.encode(), keep=_FIELD_BYTES)[0] for _field in range(4)]
        # Blank lines before the title pass unread, as git's own %s skips them: megabytes of them would
        # otherwise fill the bounded read and leave the commit without its title.
        output.skip(_BLANK)
        fields.append(output.until(b"\0", keep=_MESSAGE_BYTES)[0])
        header = [git_text(field, bound) for field, bound in zip(fields, [*[_FIELD_BYTES] * 4, _MESSAGE_BYTES])]
        files = _numstat(output) if output.peek() not in (record, b"") else _Files()
        patch = b""
        if output.peek() in (record, b""):  # an empty commit, or the end
            more = output.until(record)[1]
        else:
            patch, more = output.until(b"\n" + record, keep=MAX_PATCH_BYTES)
        yield header, files, patch


def _numstat(output: _Output) -> _Files:
    """A commit's NUL-ended ``added\\tdeleted\\tpath`` lines, up to the empty one that ends them."""
    files = _Files()
    while token := output.until(b"\0")[0]:
        if numstat := _NUMSTAT.fullmatch(git_text(token)):
            added, deleted, path = numstat.groups()
            files.add(path, None if added == "-" else int(added), None if deleted == "-" else int(deleted))
    return files


def _record(
    header: list[str], authored: datetime, files: _Files, patch: bytes, repo_name: str, mainline: Mainline
) -> ChangeRecord:
    sha, author, email, _author_time, message = header
    title, body = split_message(message)
    landing = mainline.landings[sha]
    functions, names = patch_names(patch)
    return ChangeRecord(
        id=sha,
        repo=repo_name,
        title=title,
        body=body,
        author=author[:MAX_AUTHOR_CHARS],  # git takes any author: cut, as the message, to a history line's bounds
        email=email[:MAX_AUTHOR_CHARS],
        author_time=authored,
        landed_time=landing.time,
        landed_via_merge=landing.via_merge,
        files=tuple(files.kept),
        n_files=files.count,
        added=files.added,
        deleted=files.deleted,
        directories=_directories_of(files.kept),
        functions=functions,
        identifiers=names,
    )


def _directories_of(files: list[FileStat]) -> tuple[str, ...]:
    """Sorted distinct parent directories, ``""`` for the repository root (as in the history files)."""
    return tuple(sorted({posixpath.dirname(path) for path, _added, _deleted in files}))


def _resolve_tip(path: Path, branch: str | None) -> str:
    """The commit ``branch`` (default: HEAD) points at now; everything after reads from it, not the name."""
    try:
        return _git(path, "rev-parse", "--verify", "--quiet", f"{branch or 'HEAD'}^{{commit}}").strip()
    except (GitTimedOut, GitStopped):
        raise
    except InputError:
        if branch is None:
            raise InputError(f"{path} has no commits yet; commit something or give --branch") from None
        raise InputError(f"branch or revision {branch!r} not found in {path}") from None


def _is_ancestor(path: Path, ancestor: str, tip: str) -> bool:
    """False after a force-push, and when ``ancestor`` is gone from the repository."""
    return _run_git(path, ["merge-base", "--is-ancestor", ancestor, tip]).returncode == 0


def _start_after(path: Path, tip: str, known: Tip | None, since: datetime | None) -> Tip | None:
    """The remembered tip this load may start from, or None to read the whole history."""
    if known is None or known.since != since:
        return None
    return known if known.sha == tip or _is_ancestor(path, known.sha, tip) else None


def check_repository_name(repo_name: str) -> None:
    """Refuse, before reading anything, a name longer than the column changes are stored under: SQLite would
    store it whole, PostgreSQL refuse the insert as a database error, and ``ingest history`` a mined line."""
    if len(repo_name) > MAX_REPO_CHARS:
        raise InputError(f"repository name {repo_name[:25]!r}... is over {MAX_REPO_CHARS} characters; give --repo NAME")


def _check_branch_name(branch: str) -> None:
    """As :func:`check_repository_name`, for the branch whose tip is remembered (after every change is stored)."""
    if len(branch) > MAX_BRANCH_CHARS:
        raise InputError(f"branch name {branch[:25]!r}... is over {MAX_BRANCH_CHARS} characters; "
                         "give it a shorter one (git branch SHORT LONG)")  # fmt: skip


def ingest_git(
    path: Path,
    url: str,
    since: datetime | None = None,
    branch: str | None = None,
    repo_name: str | None = None,
    progress: Progress | None = None,
) -> GitLoadReport:
    """Store every non-merge commit that landed on ``branch`` (default: HEAD) since ``since``.

    Merge commits are not changes (they have no diff of their own) but set when
    the commits they bring in landed. Only commits after the tip the last load of
    this repository's branch remembered are read (see the module docstring).
    """
    progress = progress or Silent()
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    check_repository(path)
    tip = _resolve_tip(path, branch)
    branch = branch or "HEAD"
    repo_name = repo_name or repository_name(path)
    check_repository_name(repo_name)
    _check_branch_name(branch)
    with session_scope(url) as session:
        start = _start_after(path, tip, remembered_tip(session, repo_name, branch), since)
    report = GitLoadReport(kind="changes", source=f"{repo_name} ({path.resolve()})", full_read=start is None)
    if start is not None and start.sha == tip:
        report.already_present = start.changes
        return report

    progress.start(f"reading the history of {repo_name}")
    mainline = read_mainline(path, tip, after=start.sha if start else None)
    report.commits_read = len(mainline.landings) + len(mainline.refused)
    landed = sorted(
        (landing.time, sha)
        for sha, landing in mainline.landings.items()
        if sha not in mainline.merges and (since is None or landing.time >= since)
    )
    wanted = [sha for _time, sha in landed]
    with session_scope(url) as session:
        refresh_statistics(session)
        drop_partial_changes(session, list(mainline.merges))  # a webhook cannot tell a merge from a change
        stored = existing_change_ids(session, wanted, complete_only=True)
    fresh = [sha for sha in wanted if sha not in stored]
    covered_before = start.changes if start else 0
    report.already_present = covered_before + len(stored)
    if fresh:
        progress.start(f"storing changes of {repo_name}", total=len(fresh))
        completed: set[str] = set()  # commits a webhook stored from its payload, now read in full
        refused: dict[str, str] = {}
        records = read_changes(path, fresh, repo_name, mainline, refused)
        new, present = store_changes(url, records, progress, completed=completed)
        report.new, report.updated = new, len(completed)
        report.already_present += present
        mainline.refused.update(refused)
    for sha, reason in mainline.refused.items():  # the poller prints no report: its log is where a skip shows
        log.warning("commit not stored", repo=repo_name, change=sha, reason=reason)
        report.bad_lines.append(f"commit {sha}: {reason}")
    for sha, reason in mainline.landed_when_read.items():
        if sha in fresh:
            log.warning("commit dated in the future", repo=repo_name, change=sha, reason=reason)
            report.landed_when_read.append(f"commit {sha}: {reason}")
    with session_scope(url) as session:
        remember_tip(session, repo_name, branch, Tip(tip, since, covered_before + len(wanted)))
    return report
