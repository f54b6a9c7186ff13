"""Change events that are not commits: deploys, feature-flag flips, config pushes, infrastructure changes.

They become :class:`ChangeRecord` candidates like commits. A deploy names the
commits it carried (a list, or a ``from..to`` range resolved against the
repository's stored commits) and takes their files, so ownership and path
evidence point at it as they would at the commits. Each event is checked on
its own: a bad one is refused with its reason and the rest are stored; an id
sent again is already present (idempotent). A deploy whose range culprit cannot
read yet (its commits not yet polled) is refused, not stored carrying nothing:
stored, it would stay without its commits once they came, its id already present.
A deploy listing ``commits`` is stored carrying those culprit has stored (the
others may be of a repository it does not track), and the answer names the
rest (``unknown_commits``), so the sender sees what was not carried.
"""

from __future__ import annotations

import posixpath
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from knowledge.changes import Change, ChangeRecord, FileStat
from knowledge.db import session_scope, unstorable
from knowledge.ingest.bounded_pipe import Stopping, run_child
from knowledge.ingest.change_store import store_changes
from knowledge.ingest.progress import Silent
from knowledge.sources.freshness import EVENTS, record_check
from knowledge.times import IN_THE_FUTURE, TimeOutOfRange, in_the_future, utc_moment

EVENT_KINDS = ("deploy", "flag", "config", "infra")
MAX_TEXT = {"title": 500, "description": 20_000, "author": 200, "service": 200, "link": 2000,
            "environment": 100, "version": 200, "source": 200, "repo": 200}  # fmt: skip
# Always fullmatch: with match, "$" also matches before a final newline, so "deploy-1\n" would pass.
_ID = re.compile(r"[\w.:/@+-]{1,64}")
_SHA = re.compile(r"[0-9a-f]{4,64}")
MAX_CARRIED = 1000
MAX_FILES = 500
# Listing a deploy's range walks the mirror while the sender waits for its answer: a stalled disk or a
# huge range must not hold it (git's own failure already falls back to landing times).
RANGE_TIMEOUT_S = 30

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RejectedEvent:
    """One event of a batch that was refused, and why; the others are stored."""

    index: int
    id: str | None
    reason: str


@dataclass(frozen=True)
class UnreadableEvent:
    """An item its reader could not parse (a line of a file that is not JSON): refused with the reader's reason
    and its place in the batch kept, so the other items' indexes still count the file's events."""

    reason: str


@dataclass
class EventBatch:
    """A batch checked item by item: the events fit to store and the refused ones with reasons."""

    received: int
    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[RejectedEvent] = field(default_factory=list)


@dataclass(frozen=True)
class UnknownCommits:
    """The listed ``commits`` of a stored deploy that name no one stored commit (not polled yet, of a repository
    culprit does not track, or an abbreviation several share): the deploy carries the others, and the sender
    is told which are missing rather than have them dropped unseen."""

    index: int
    id: str
    commits: list[str]


@dataclass(frozen=True)
class EventsStored:
    new: int
    already_present: int
    rejected: list[RejectedEvent]
    unknown_commits: list[UnknownCommits] = field(default_factory=list)


def _text(item: dict[str, Any], name: str, required: bool = False) -> str:
    value = item.get(name)
    if value is None or value == "":
        if required:
            raise ValueError(f"missing '{name}'")
        return ""
    if not isinstance(value, str):
        raise ValueError(f"'{name}' must be a string")
    if why := unstorable(value):
        raise ValueError(f"'{name}' {why}")
    if len(value) > MAX_TEXT[name]:
        raise ValueError(f"'{name}' is over {MAX_TEXT[name]} characters")
    return value


def _time(item: dict[str, Any]) -> datetime:
    raw = item.get("time")
    if not isinstance(raw, str):
        raise ValueError("missing 'time' (ISO 8601 with a time zone, e.g. 2026-11-30T15:04:05Z)")
    try:
        moment = utc_moment(raw, zone_required=True)
    except TimeOutOfRange as error:  # one reason for both ends left a sender with a wrong clock guessing which
        raise ValueError(f"'time' {raw[:40]!r} {error}: give one from 1970 to 9999 in UTC") from None
    except ValueError as error:
        raise ValueError(f"bad 'time' {raw[:40]!r}: {error} (use ISO 8601 with a time zone, e.g. 2026-11-30T15:04:05Z)") from None
    if in_the_future(moment):
        raise ValueError(f"'time' {raw[:40]!r} {IN_THE_FUTURE}")
    return moment


def _commits(item: dict[str, Any]) -> tuple[list[str], str]:
    """The carried commits as listed, and a ``from..to`` range (either may be empty)."""
    listed = item.get("commits", [])
    if not isinstance(listed, list) or len(listed) > MAX_CARRIED:
        raise ValueError(f"'commits' must be a list of at most {MAX_CARRIED} commit shas")
    if any(not isinstance(sha, str) or not _SHA.fullmatch(sha) for sha in listed):
        raise ValueError("'commits' must hold hexadecimal commit shas")
    span = item.get("commit_range") or ""
    if span and (not isinstance(span, str) or not re.fullmatch(r"[0-9a-f]{4,64}\.\.[0-9a-f]{4,64}", span)):
        raise ValueError("'commit_range' must read FROM..TO with two commit shas")
    return listed, span


def check_event(item: Any) -> dict[str, Any]:
    """One event's fields, validated; ValueError says what is wrong."""
    if isinstance(item, UnreadableEvent):
        raise ValueError(item.reason)
    if not isinstance(item, dict):
        raise ValueError("expected an object with id, kind, service, title and time")
    identifier = item.get("id")
    if not isinstance(identifier, str) or not _ID.fullmatch(identifier):
        raise ValueError("'id' must be 1 to 64 letters, digits or . _ : / @ + -")
    kind = item.get("kind")
    if kind not in EVENT_KINDS:
        raise ValueError(f"'kind' must be one of {', '.join(EVENT_KINDS)}")
    checked: dict[str, Any] = {"id": identifier, "kind": kind, "time": _time(item)}
    checked["service"] = _text(item, "service", required=True)
    for name in ("title", "description", "author", "environment", "version", "source", "repo"):
        checked[name] = _text(item, name)
    checked["link"] = _text(item, "link")
    if checked["link"] and not re.match(r"^https?://", checked["link"]):
        raise ValueError("'link' must be an http(s) URL")
    checked["commits"], checked["commit_range"] = _commits(item)
    if (checked["commits"] or checked["commit_range"]) and kind != "deploy":
        raise ValueError("only a deploy carries commits")
    if checked["commit_range"] and not checked["repo"]:
        raise ValueError("'commit_range' needs 'repo' (the repository the range is in)")
    return checked


def check_events(items: Sequence[Any]) -> EventBatch:
    """Each item checked on its own; an id already given earlier in the batch is refused, naming that
    event (stored together they would fail the whole batch's insert)."""
    batch = EventBatch(received=len(items))
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        try:
            event = check_event(item)
            earlier = first_index.setdefault(event["id"], index)
            if earlier != index:
                raise ValueError(f"'id' repeats event {earlier} of this batch")
            batch.events.append(event | {"index": index})
        except ValueError as error:
            identifier = item.get("id") if isinstance(item, dict) else None
            shown = str(identifier)[:64].encode("utf-8", "backslashreplace").decode() if identifier else None
            batch.rejected.append(RejectedEvent(index, shown, str(error)))
    return batch


def _range_in_mirror(mirror: Path | None, span: str) -> list[str] | None:
    """The first ``MAX_CARRIED`` non-merge commits of ``FROM..TO``, oldest first as git lists them, or None
    when the mirror lacks them (yet) or git took over ``RANGE_TIMEOUT_S``. The range is counted first and
    only the kept commits are listed (git skips the newest before reversing), so a range of a million
    commits is never printed whole."""
    if mirror is None or not mirror.exists():
        return None
    counted = _rev_list(mirror, "--count", span)
    if counted is None:
        return None
    listed = _rev_list(mirror, "--reverse", f"--skip={max(0, int(counted) - MAX_CARRIED)}", span)
    return None if listed is None else listed.split()


def _rev_list(mirror: Path, *args: str) -> str | None:
    """``git rev-list --no-merges`` in the mirror: its output, or None when it fails or runs too long, or
    ``culprit serve`` is exiting (which kills it, one stuck on a hung mount included, and starts none after)."""
    try:
        listed = run_child(["git", "-C", str(mirror), "rev-list", "--no-merges", *args, "--"], RANGE_TIMEOUT_S, text=True)
    except Stopping:
        return None
    except subprocess.TimeoutExpired:
        log.warning("deploy range read by landing time: git took too long", mirror=mirror.name,
                    seconds=RANGE_TIMEOUT_S)  # fmt: skip
        return None
    return listed.stdout if listed.returncode == 0 else None


def _listed_commits(session: Session, shas: list[str]) -> tuple[list[Change], list[str]]:
    """The stored commits the listed (full or abbreviated) shas name, and the shas that name no one of them."""
    found: list[Change] = []
    unknown: list[str] = []
    for sha in shas:
        query = select(Change).where(Change.kind == "commit", Change.id.startswith(sha)).limit(2)
        matches = list(session.scalars(query.options(selectinload(Change.files))))
        if len(matches) == 1:
            found += matches
        else:
            unknown.append(sha)
    return found, unknown


def _carried(session: Session, event: dict[str, Any], listed: list[str] | None, found: list[Change]) -> list[Change]:
    """The stored commits a deploy carried: ``found`` (those its ``commits`` name), and those of its range,
    ``listed`` from the repository's mirror, else (None) by landing time between the range's ends; ValueError
    when neither reads the range (the mirror lacks it and an end is no stored commit of ``repo``)."""
    if not event["commit_range"]:
        return found
    if listed is not None:
        by_id = {c.id: c for c in session.scalars(select(Change).where(Change.id.in_(listed)).options(selectinload(Change.files)))}
        return found + [by_id[sha] for sha in listed if sha in by_id]
    ends = [_landed(session, event["repo"], sha) for sha in event["commit_range"].split("..")]
    if ends[0] is None or ends[1] is None:
        raise ValueError(f"'commit_range' is not known in {event['repo']} yet (not in its mirror, and not both ends "
                         "among its stored commits): send the deploy again once culprit has polled them, "
                         "or without 'commit_range' (a range on a branch culprit does not track)")  # fmt: skip
    return found + list(session.scalars(
        select(Change)
        .where(Change.repo == event["repo"], Change.kind == "commit")
        .where(Change.landed_time > ends[0], Change.landed_time <= ends[1])
        .order_by(Change.landed_time)
        .limit(MAX_CARRIED)
        .options(selectinload(Change.files))
    ))  # fmt: skip


def _landed(session: Session, repo: str, sha: str) -> datetime | None:
    """When the stored commit of ``repo`` that ``sha`` abbreviates landed (None: none is stored); ValueError
    when several are, as git refuses an ambiguous sha: any one of them would make another range."""
    landed = session.scalars(select(Change.landed_time).where(Change.repo == repo, Change.id.startswith(sha)).limit(2)).all()
    if len(landed) > 1:
        raise ValueError(f"'commit_range' end {sha} names several commits of {repo}: give more of its sha")
    return landed[0] if landed else None


def event_record(event: dict[str, Any], carried: list[Change]) -> ChangeRecord:
    """The event as a change; a deploy takes the files of the commits it carried."""
    files: list[FileStat] = [(f.path, f.added, f.deleted) for change in carried for f in change.files][:MAX_FILES]
    title = event["title"] or " ".join(
        filter(None, [event["kind"], event["service"], event["version"], event["environment"] and f"to {event['environment']}"])
    )
    return ChangeRecord(
        id=event["id"],
        repo=event["source"] or event["kind"],
        title=title,
        body=event["description"],
        author=event["author"],
        author_time=event["time"],
        landed_time=event["time"],
        files=tuple(files),
        n_files=len(files),
        added=sum(added or 0 for _path, added, _deleted in files),
        deleted=sum(deleted or 0 for _path, _added, deleted in files),
        directories=tuple(sorted({posixpath.dirname(path) for path, _a, _d in files})),
        services=(event["service"],),
        kind=event["kind"],
        link=event["link"],
        environment=event["environment"],
        version=event["version"],
        carries=tuple(dict.fromkeys(change.id for change in carried)),
    )


def store_events(batch: EventBatch, url: str, mirrors: Mapping[str, Path] | None = None) -> EventsStored:
    """Store the batch's good events (each id once), and mark their sources as heard from now.
    ``mirrors``: the tracked repositories' mirrors by name, where a deploy's commit range is resolved."""
    mirrors = mirrors or {}
    # git may take RANGE_TIMEOUT_S twice per deploy: ranges are listed before a session holds a connection.
    ranges = [_range_in_mirror(mirrors.get(event["repo"]), event["commit_range"]) if event["commit_range"] else None
              for event in batch.events]  # fmt: skip
    records: list[ChangeRecord] = []
    rejected = list(batch.rejected)
    unknown_commits: list[UnknownCommits] = []
    with session_scope(url) as session:
        for event, listed in zip(batch.events, ranges, strict=True):
            found, unknown = _listed_commits(session, event["commits"])
            try:
                carried = _carried(session, event, listed, found)
            except ValueError as error:
                rejected.append(RejectedEvent(event["index"], event["id"], str(error)))
                continue
            records.append(event_record(event, carried))
            if unknown:
                unknown_commits.append(UnknownCommits(event["index"], event["id"], unknown))
    new, present = store_changes(url, records, Silent()) if records else (0, 0)
    with session_scope(url) as session:
        for source in sorted({record.repo for record in records}):
            record_check(session, source, EVENTS)
    return EventsStored(new, present, sorted(rejected, key=lambda item: item.index), unknown_commits)
