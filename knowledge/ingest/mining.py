"""Past investigations mined from a repository's own history.

Each fix commit that names the change it repairs (see :mod:`knowledge.ingest.fix_links`)
becomes one case in the interchange format ``culprit train`` reads: the
incident is the fix as its author reported it, starting when it was written
(its author time, as in ``shared/data/rca``); the candidates are the changes
that landed on the branch in the window before; the answer is the named change.
A named change that is unknown, ambiguous, not landed on the branch, a merge,
or outside the window makes no case, and each such skip is counted by reason.

Reading costs three streaming git calls whatever the history's size: the commit
graph, every message, and the line counts and patches (for the functions touched
and identifiers added or removed) of the commits some case needs.
"""

from __future__ import annotations

import bisect
import gzip
import json
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from knowledge.changes import ChangeRecord
from knowledge.ingest.fix_links import MAX_MESSAGE_CHARS, REVERT, Link, find_links, incident_report
from knowledge.ingest.git_log import (
    LOG_IN_UTF8,
    _BLANK,
    _Output,
    _bad_date,
    _resolve_tip,
    _running,
    split_message,
    _stream,
    _utc,
    check_repository,
    check_repository_name,
    git_text,
    read_changes,
    read_mainline,
    repository_name,
)
from knowledge.ingest.history_files import MAX_FILES, MAX_TITLE_CHARS
from knowledge.ingest.progress import Progress, Silent

WINDOW_DAYS = 14
MIN_CANDIDATES = 2
MAX_CANDIDATES = MAX_FILES
"""Most changes a case's window may hold: the most a ``cases-*`` line may list (a busy repository's merge
window lands more in two weeks, and ``ingest history`` would refuse that line, failing the whole load)."""
MIN_REPORT_CHARS = 20
_LOG_FORMAT = "%x1e%H%x1f%at%x1f%B"
# The bytes of a record's header fields (a sha, a time) read, and of its message: enough for MAX_MESSAGE_CHARS
# characters of four bytes each, plus one more, so a character cut in its middle falls past the part kept.
_FIELD_BYTES = 128
_MESSAGE_BYTES = 4 * (MAX_MESSAGE_CHARS + 1)

# Why a named change made no case (the keys of ``MiningReport.skipped``).
UNKNOWN = "unknown_change"
AMBIGUOUS = "ambiguous_sha"
OTHER_BRANCH = "not_on_branch"
MERGE = "named_change_is_merge"
OUTSIDE = "outside_window"
REVERT_OF_REVERT = "revert_of_revert"
TOO_FEW = "too_few_candidates"
TOO_MANY = "too_many_candidates"
NO_REPORT = "report_too_short"
SELF = "names_itself"


@dataclass(frozen=True)
class _Commit:
    sha: str
    author_time: int
    message: str


@dataclass
class MinedCase:
    """One case, already in the interchange file's shape."""

    row: dict[str, Any]
    candidates: list[str]


@dataclass
class MiningReport:
    """What mining found and why the rest was left out."""

    repo: str
    branch: str
    tip: str
    commits_read: int = 0
    fix_commits_with_links: int = 0
    cases: int = 0
    link_kinds: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)
    # Commits left out of every case, as sha: why (a date outside 1970 to 9999, theirs or their merge's).
    refused_commits: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "branch": self.branch,
            "tip": self.tip,
            "commits_read": self.commits_read,
            "fix_commits_with_links": self.fix_commits_with_links,
            "cases": self.cases,
            "link_kinds": dict(self.link_kinds),
            "skipped": dict(self.skipped),
            "files": self.files,
            "refused_commits": self.refused_commits,
        }


def _read_messages(
    repo: Path, tip: str, refused: dict[str, str]
) -> tuple[dict[str, _Commit], dict[str, list[Link]]]:
    """Every commit's title (its whole message when it names another change), and the links found;
    a commit whose author date is not from 1970 to 9999 goes into ``refused`` instead.

    Only messages with links are kept (their first ``MAX_MESSAGE_CHARS``, all that is read of them), so a
    history of a million commits fits in memory; and a message of hundreds of megabytes is cut while it is read."""
    messages: dict[str, _Commit] = {}
    links: dict[str, list[Link]] = {}
    for sha, author_time, message in _message_records(repo, tip):
        message = message[:MAX_MESSAGE_CHARS]
        if _utc(author_time) is None:
            refused[sha] = _bad_date("author date", author_time)
            continue
        found = find_links(message)
        if found:
            links[sha] = found
        messages[sha] = _Commit(sha, int(author_time), message if found else split_message(message)[0])
    return messages, links


def _message_records(repo: Path, tip: str) -> Iterator[tuple[str, str, str]]:
    """(sha, author time, message) of each commit of one ``git log -z``, each field read only up to its bound.
    Blank lines before the title pass unread, as git's own %s skips them: megabytes of them (``%B`` keeps
    what ``--cleanup=verbatim`` or a tool wrote) would otherwise fill the bounded read and hide the links."""
    args = ["log", "-z", LOG_IN_UTF8, f"--format={_LOG_FORMAT}", tip, "--"]
    with _running(repo, args) as pipe:
        output = _Output(pipe)
        while output.until(b"\x1e")[1]:
            sha = output.until(b"\x1f", keep=_FIELD_BYTES)[0]
            author_time = output.until(b"\x1f", keep=_FIELD_BYTES)[0]
            output.skip(_BLANK)
            message = output.until(b"\0", keep=_MESSAGE_BYTES)[0]
            yield sha.decode(errors="replace"), author_time.decode(errors="replace"), git_text(message, _MESSAGE_BYTES)


def _lookup_outside(repo: Path, prefixes: list[str]) -> dict[str, str]:
    """For shas not among the branch's commits: ``missing``, ``ambiguous`` or ``elsewhere``."""
    if not prefixes:
        return {}
    with tempfile.TemporaryFile() as names:
        names.write("".join(f"{prefix}\n" for prefix in prefixes).encode())
        names.seek(0)
        # Streamed, so an object git never finishes opening (a pipe, a hung mount) fails after GIT_SILENCE_S.
        lines = [line for line in _stream(repo, ["cat-file", "--batch-check"], stdin=names) if line]
    found: dict[str, str] = {}
    for prefix, line in zip(prefixes, lines, strict=False):
        found[prefix] = "ambiguous" if line.endswith("ambiguous") else "missing" if line.endswith("missing") else "elsewhere"
    return found


class _Resolver:
    """Abbreviated shas to the branch's commits, and reverted titles to the latest such change."""

    def __init__(self, shas: list[str], titles: dict[str, list[tuple[int, str]]]) -> None:
        self._sorted = sorted(shas)
        self._titles = titles

    def by_sha(self, prefix: str) -> list[str]:
        start = bisect.bisect_left(self._sorted, prefix)
        matches: list[str] = []
        for sha in self._sorted[start : start + 2]:
            if sha.startswith(prefix):
                matches.append(sha)
        return matches

    def by_title(self, title: str, before: int) -> str | None:
        earlier = [sha for landed, sha in self._titles.get(title, []) if landed < before]
        return earlier[-1] if earlier else None


def mine_history(
    path: Path,
    out_dir: Path,
    repo_name: str | None = None,
    since: datetime | None = None,
    branch: str | None = None,
    window_days: int = WINDOW_DAYS,
    progress: Progress | None = None,
) -> MiningReport:
    """Write ``cases-<repo>.jsonl.gz`` and ``commits-<repo>.jsonl.gz`` into ``out_dir`` for every
    fix on ``branch`` (default HEAD) written since ``since`` that names a change of the window."""
    progress = progress or Silent()
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    check_repository(path)
    tip = _resolve_tip(path, branch)
    repo_name = repo_name or repository_name(path)
    check_repository_name(repo_name)
    report = MiningReport(repo=repo_name, branch=branch or "HEAD", tip=tip)
    progress.start(f"reading the history of {repo_name}")
    mainline = read_mainline(path, tip)
    report.refused_commits = dict(mainline.refused)
    messages, links_of = _read_messages(path, tip, report.refused_commits)
    report.commits_read = len(messages.keys() | report.refused_commits.keys())
    landed = {sha: int(landing.time.timestamp()) for sha, landing in mainline.landings.items() if sha in messages}
    changes = sorted((time, sha) for sha, time in landed.items() if sha not in mainline.merges)
    change_times = [time for time, _sha in changes]
    titles: dict[str, list[tuple[int, str]]] = {}
    for time, sha in changes:
        titles.setdefault(split_message(messages[sha].message)[0], []).append((time, sha))
    resolver = _Resolver(list(landed), titles)
    window = int(timedelta(days=window_days).total_seconds())
    floor = since.timestamp() if since else float("-inf")

    linked = [(messages[sha], links_of[sha]) for _time, sha in changes if sha in links_of]
    unresolved = sorted({link.sha for _fix, links in linked for link in links if link.sha and not resolver.by_sha(link.sha)})
    outside = _lookup_outside(path, unresolved)
    progress.start(f"finding fixes in {len(linked)} commits that name another", total=len(linked))
    cases: list[MinedCase] = []
    for fix, links in linked:
        progress.advance()
        if fix.author_time < floor:
            continue
        report.fix_commits_with_links += 1
        start = fix.author_time - window
        case = _case_for(fix, links, resolver, outside, landed, mainline.merges, messages, start, report)
        if case is None:
            continue
        low, high = bisect.bisect_left(change_times, start), bisect.bisect_left(change_times, fix.author_time)
        candidates = [sha for _time, sha in changes[low:high] if sha != fix.sha]
        if len(candidates) < MIN_CANDIDATES:
            report.skipped[TOO_FEW] += 1
            continue
        if len(candidates) > MAX_CANDIDATES:
            report.skipped[TOO_MANY] += 1
            continue
        case.update(
            case_id=f"{repo_name}@{fix.sha[:12]}", repo=repo_name, window_days=window_days, window_start=start,
            n_candidates=len(candidates), candidates=candidates,
        )  # fmt: skip
        cases.append(MinedCase(_ordered(case), candidates))
        report.link_kinds[case["truth"]["link_kind"]] += 1
    report.cases = len(cases)
    report.files = _write_files(path, out_dir, repo_name, cases, mainline, progress)
    return report


def _case_for(
    fix: _Commit,
    links: list[Link],
    resolver: _Resolver,
    outside: dict[str, str],
    landed: dict[str, int],
    merges: set[str],
    messages: dict[str, _Commit],
    window_start: int,
    report: MiningReport,
) -> dict[str, Any] | None:
    """The case's incident and truth, or None with the reason counted (the first that applies)."""
    culprits: dict[str, str] = {}
    reasons: list[str] = []
    for link in links:
        if link.sha:
            matches = resolver.by_sha(link.sha)
            if len(matches) != 1:
                found = outside.get(link.sha, "missing")
                reasons.append(AMBIGUOUS if len(matches) > 1 or found == "ambiguous" else
                               OTHER_BRANCH if found == "elsewhere" else UNKNOWN)  # fmt: skip
                continue
            sha = matches[0]
        else:
            found_sha = resolver.by_title(link.title, fix.author_time)
            if found_sha is None:
                reasons.append(UNKNOWN)
                continue
            sha = found_sha
        if sha == fix.sha:
            reasons.append(SELF)
        elif sha in merges:
            reasons.append(MERGE)
        elif link.kind == REVERT and any(other.kind == REVERT for other in find_links(messages[sha].message)):
            reasons.append(REVERT_OF_REVERT)
        elif not window_start <= landed[sha] < fix.author_time:
            reasons.append(OUTSIDE)
        else:
            culprits.setdefault(sha, link.kind)
    if not culprits:
        report.skipped[reasons[0] if reasons else UNKNOWN] += 1
        return None
    kinds = list(dict.fromkeys(culprits.values()))
    culprit_titles = [split_message(messages[sha].message)[0] for sha in culprits]
    title, text = incident_report(fix.message, kinds, culprit_titles)
    if len(title) + len(text) < MIN_REPORT_CHARS:
        report.skipped[NO_REPORT] += 1
        return None
    fix_title = split_message(fix.message)[0]
    return {
        "incident": {
            "time": fix.author_time,
            "time_iso": datetime.fromtimestamp(fix.author_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "title": title[:MAX_TITLE_CHARS],  # a case line's bound; the text is already cut to less
            "text": text,
        },
        "truth": {
            "culprits": list(culprits),
            "link_kind": kinds[0],
            "link_kinds": kinds,
            "culprit_landed_times": [landed[sha] for sha in culprits],
        },
        "provenance": {
            "fix_sha": fix.sha,
            "fix_title": fix_title,
            "fix_author_time": fix.author_time,
            "fix_landed_time": landed[fix.sha],
        },
    }


def _ordered(case: dict[str, Any]) -> dict[str, Any]:
    keys = ("case_id", "repo", "incident", "window_days", "window_start", "n_candidates", "candidates", "truth",
            "provenance")  # fmt: skip
    return {key: case[key] for key in keys}


def file_stem(repo_name: str) -> str:
    """A repository name as part of a file name: `acme/payments` -> `acme__payments`."""
    return repo_name.replace("/", "__")


def commit_row(change: ChangeRecord, mainline_seq: int) -> dict[str, Any]:
    return {
        "repo": change.repo,
        "sha": change.id,
        "author": change.author,
        "email": change.email,
        "author_time": int(change.author_time.timestamp()),
        "landed_time": int(change.landed_time.timestamp()),
        "landed_via_merge": change.landed_via_merge,
        "landed_seq": mainline_seq,
        "title": change.title,
        "body": change.body,
        "n_files": change.n_files,
        "added": change.added,
        "deleted": change.deleted,
        "files": [list(stat) for stat in change.files],
        "dirs": list(change.directories),
        "functions": list(change.functions),
        "identifiers": list(change.identifiers),
    }


def _write_files(
    path: Path, out_dir: Path, repo_name: str, cases: list[MinedCase], mainline: Any, progress: Progress
) -> list[str]:
    """The two interchange files, each written whole then moved into place."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = file_stem(repo_name)
    needed = sorted({sha for case in cases for sha in case.candidates},
                    key=lambda sha: (mainline.landings[sha].time, sha))  # fmt: skip
    commits_path = out_dir / f"commits-{stem}.jsonl.gz"
    cases_path = out_dir / f"cases-{stem}.jsonl.gz"
    progress.start(f"writing {len(needed)} candidate changes of {repo_name}", total=len(needed))
    with atomic_gzip(commits_path) as handle:
        for seq, change in enumerate(read_changes(path, needed, repo_name, mainline)):
            handle.write(json.dumps(commit_row(change, seq), ensure_ascii=False) + "\n")
            progress.advance()
    with atomic_gzip(cases_path) as handle:
        for case in cases:
            handle.write(json.dumps(case.row, ensure_ascii=False) + "\n")
    return [str(cases_path), str(commits_path)]


class atomic_gzip:  # noqa: N801 (used as a context manager, like open)
    def __init__(self, path: Path) -> None:
        self._path = path
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        self._temporary = Path(name)
        self._raw = open(handle, "wb")  # noqa: SIM115
        self._handle = gzip.open(self._raw, "wt", encoding="utf-8")

    def __enter__(self) -> Any:
        return self._handle

    def __exit__(self, kind: object, *_rest: object) -> None:
        self._handle.close()
        self._raw.close()
        if kind is None:
            self._temporary.chmod(0o644)  # mkstemp's 0600 would hide the files from the team's other users
            self._temporary.replace(self._path)
        else:
            self._temporary.unlink(missing_ok=True)
