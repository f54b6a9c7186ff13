"""GitHub and GitLab webhook payloads as changes of a tracked repository, stored at once.

A payload names the commits and the files they touched but not line counts, and
not which commits are merges: its changes are stored ``partial``, and the next
poll of the repository replaces them with git's full record (see
:func:`knowledge.ingest.change_store.drop_partial_changes`). Only pushes to the
tracked branch and pull or merge requests merged into it count; anything else
is answered as ignored. Signatures and tokens are the HTTP layer's to check,
before the payload is parsed.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from knowledge.changes import ChangeRecord, FileStat
from knowledge.config import TrackedRepo
from knowledge.db import unstorable
from knowledge.ingest.change_store import store_changes
from knowledge.ingest.git_log import split_message
from knowledge.ingest.history_files import MAX_FILES, MAX_PATH_CHARS, MAX_TITLE_CHARS
from knowledge.ingest.progress import Silent
from knowledge.times import IN_THE_FUTURE, TimeOutOfRange, in_the_future, utc_moment

# Always fullmatch: with match, "$" also matches before a final newline.
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
MAX_COMMITS = 2000
_MESSAGE_CHARS = 20_000  # of a pushed message or a description: a title and a body's start (the poll brings the rest)


@dataclass(frozen=True)
class WebhookChanges:
    """What a delivery means: the tracked repository it is for (None: not tracked) and its changes."""

    repo: TrackedRepo | None
    records: list[ChangeRecord]
    ignored: str = ""
    refused: tuple[str, ...] = ()  # a commit the payload describes that cannot be stored, and why


def _normalised(location: str) -> str:
    return location.strip().lower().removesuffix("/").removesuffix(".git")


def find_tracked(repos: Iterable[TrackedRepo], names: Iterable[Any]) -> TrackedRepo | None:
    """The tracked repository a payload names, by ``owner/name`` or by any of its URLs."""
    given = {_normalised(name) for name in names if isinstance(name, str) and name}
    for repo in repos:
        if _normalised(repo.name) in given or (repo.url and _normalised(repo.url) in given):
            return repo
    return None


def _when(part: dict[str, Any], name: str) -> datetime:
    """The time ``part[name]`` gives, in UTC. ValueError when there is none that can be read (stored at "now"
    instead, the change would fall into every current incident's window), it lies outside 1970 to 9999
    (or past what Python holds once moved to UTC), or further ahead than ``CLOCK_SKEW`` (stored, a commit
    dated 2099 would land in every window until then). ISO 8601, and GitLab's ``2019-10-23 06:37:28 UTC`` of
    merge request hooks; a time without a zone is taken as UTC."""
    raw = part.get(name)
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"no '{name}' time")
    try:
        moment = utc_moment(raw)
    except TimeOutOfRange:
        raise ValueError(f"time {raw[:40]!r} is not from 1970 to 9999") from None
    except ValueError:
        raise ValueError(f"'{name}' {raw[:40]!r} is not a time (ISO 8601 expected)") from None
    if in_the_future(moment):
        raise ValueError(f"'{name}' {raw[:40]!r} {IN_THE_FUTURE}")
    return moment


def _text(value: Any, limit: int) -> str:
    """Text from the payload with NULs dropped, or "" when it holds none; ValueError for what still
    cannot be stored (a lone surrogate, ``\\ud800`` in JSON), so its change is refused instead of failing the delivery."""
    if not isinstance(value, str):
        return ""
    text = value.replace("\x00", "")
    if why := unstorable(text):
        raise ValueError(f"text {why}")
    return text[:limit]


def _object(value: Any) -> dict[str, Any]:
    """A part of the payload that should be an object; anything else is as good as absent."""
    return value if isinstance(value, dict) else {}


def _files(commit: dict[str, Any]) -> tuple[tuple[FileStat, ...], int]:
    """The commit's distinct paths as ``ingest git`` keeps a commit's: the first ``MAX_FILES`` (a commit imported
    from the history files holds no more, and a payload listing a million paths must not become a million rows),
    none over ``MAX_PATH_CHARS`` (it names no file, and cut it would name another); and how many it lists."""
    paths: dict[str, None] = {}
    for key in ("added", "modified", "removed"):
        listed = commit.get(key)
        for path in listed if isinstance(listed, list) else []:
            if isinstance(path, str) and (text := _text(path, len(path))):
                paths[text] = None
    kept = [path for path in paths if len(path) <= MAX_PATH_CHARS][:MAX_FILES]
    return tuple((path, None, None) for path in kept), len(paths)


def _titled(title: Any, body: Any) -> str:
    """A merged pull or merge request as the message of its merge commit: its title, cut where ``ingest git``
    cuts a commit's, then its description."""
    return f"{_text(title, MAX_TITLE_CHARS)}\n\n{_text(body, _MESSAGE_CHARS)}"


def _pushed_record(repo: TrackedRepo, commit: dict[str, Any]) -> ChangeRecord | None:
    message = commit.get("message")
    # Blank lines before the title go before the cut, as ``ingest git`` skips them: the title is still read.
    message = _text(message.lstrip() if isinstance(message, str) else message, _MESSAGE_CHARS)
    when = _when(commit, "timestamp")
    files, n_files = _files(commit)
    return _record(repo, commit.get("id"), message, commit.get("author"), when, files, n_files, commit.get("url"))


def _record(repo: TrackedRepo, sha: Any, message: str, author: Any, when: datetime,
            files: tuple[FileStat, ...] = (), n_files: int = 0, link: Any = "") -> ChangeRecord | None:  # fmt: skip
    if sha is None:  # a merge request merged without a merge commit (fast-forward): its push hook brings the commits
        return None
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        raise ValueError("its id is no commit sha (40 or 64 lowercase hex digits)")
    title, body = split_message(message)  # as ``ingest git`` splits and cuts it: one title by either path
    author = author if isinstance(author, dict) else {}
    return ChangeRecord(
        id=sha,
        repo=repo.name,
        title=title,
        body=body,
        author=_text(author.get("name") or author.get("username") or author.get("login"), 200),
        email=_text(author.get("email"), 200),
        author_time=when,
        landed_time=when,
        files=files,
        n_files=n_files,
        directories=tuple(sorted({posixpath.dirname(path) for path, _a, _d in files})),
        link=_text(link, 2000),
        partial=True,
    )


def _changes(repo: TrackedRepo, commits: list[tuple[Any, Callable[[], ChangeRecord | None]]]) -> WebhookChanges:
    """Each (sha, build) made a record, a commit ``build`` refuses (ValueError) listed with why."""
    records: list[ChangeRecord] = []
    refused: list[str] = []
    for sha, build in commits:
        try:
            record = build()
        except ValueError as error:
            refused.append(f"commit {str(sha)[:64].encode('utf-8', 'backslashreplace').decode()}: {error}")
            continue
        if record is not None:
            records.append(record)
    return WebhookChanges(repo, records, refused=tuple(refused))


def _pushed(repo: TrackedRepo, commits: Any) -> WebhookChanges:
    listed = [commit for commit in commits[:MAX_COMMITS] if isinstance(commit, dict) and commit.get("distinct", True)] \
        if isinstance(commits, list) else []  # fmt: skip
    return _changes(repo, [(commit.get("id"), lambda commit=commit: _pushed_record(repo, commit)) for commit in listed])


def github_changes(event: str, payload: dict[str, Any], repos: list[TrackedRepo]) -> WebhookChanges:
    """A ``push`` to the tracked branch, or a ``pull_request`` closed as merged into it."""
    if event == "ping":
        return WebhookChanges(None, [], ignored="ping")
    if event == "push":
        project = _object(payload.get("repository"))
        repo = find_tracked(repos, [project.get(key) for key in ("full_name", "clone_url", "ssh_url", "html_url")])
        if repo is None:
            return WebhookChanges(None, [], ignored="repository not tracked")
        if payload.get("ref") != f"refs/heads/{repo.branch}" or payload.get("deleted"):
            return WebhookChanges(repo, [], ignored=f"not a push to {repo.branch}")
        return _pushed(repo, payload.get("commits"))
    if event == "pull_request":
        pull = _object(payload.get("pull_request"))
        base = _object(pull.get("base"))
        project = _object(base.get("repo")) or _object(payload.get("repository"))
        repo = find_tracked(repos, [project.get(key) for key in ("full_name", "clone_url", "ssh_url", "html_url")])
        if repo is None:
            return WebhookChanges(None, [], ignored="repository not tracked")
        if payload.get("action") != "closed" or not pull.get("merged") or base.get("ref") != repo.branch:
            return WebhookChanges(repo, [], ignored=f"not a pull request merged into {repo.branch}")
        return _changes(repo, [(pull.get("merge_commit_sha"), lambda: _record(
            repo, pull.get("merge_commit_sha"), _titled(pull.get("title"), pull.get("body")), pull.get("user"),
            _when(pull, "merged_at"), link=pull.get("html_url")))])  # fmt: skip
    return WebhookChanges(None, [], ignored=f"event {event[:50]!r} is not used")


def gitlab_changes(payload: dict[str, Any], repos: list[TrackedRepo]) -> WebhookChanges:
    """A push hook to the tracked branch, or a merge request hook for a merge into it."""
    project = _object(payload.get("project"))
    names = [project.get(key) for key in ("path_with_namespace", "git_http_url", "git_ssh_url", "web_url")]
    repo = find_tracked(repos, names)
    kind = payload.get("object_kind")
    if kind not in ("push", "merge_request"):
        return WebhookChanges(repo, [], ignored=f"event {str(kind)[:50]!r} is not used")
    if repo is None:
        return WebhookChanges(None, [], ignored="repository not tracked")
    if kind == "push":
        if payload.get("ref") != f"refs/heads/{repo.branch}":
            return WebhookChanges(repo, [], ignored=f"not a push to {repo.branch}")
        return _pushed(repo, payload.get("commits"))
    merge = _object(payload.get("object_attributes"))
    if merge.get("action") != "merge" or merge.get("target_branch") != repo.branch:
        return WebhookChanges(repo, [], ignored=f"not a merge request merged into {repo.branch}")
    return _changes(repo, [(merge.get("merge_commit_sha"), lambda: _record(
        repo, merge.get("merge_commit_sha"), _titled(merge.get("title"), merge.get("description")),
        payload.get("user"), _when(merge, "updated_at"), link=merge.get("url")))])  # fmt: skip


def store_webhook_changes(changes: WebhookChanges, url: str) -> tuple[int, int]:
    """Store what the payload told, each change once even if a poll or another replica got there first.
    Returns (new, already present)."""
    if not changes.records:
        return 0, 0
    return store_changes(url, changes.records, Silent())
