"""Wiki sources synced on a schedule: a Confluence space (langchain-community's ``ConfluenceLoader``),
a Notion export folder (read page by page) and a Slack export of past incident channels
(``SlackDirectoryLoader``), whose messages become searchable incident history. A page a source
cannot give this time is refused on its own (:mod:`knowledge.wiki.source_loaders`).

Each source's pages are named ``<kind>:<source name>/...``, so a sync adds, updates and removes
only its own chunks, and only sections whose text changed are embedded again
(:func:`knowledge.wiki.indexing.sync_pages`). A token comes from the environment
variable the source names and never reaches a log or an error.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
import zipfile
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from chromadb.api.models.Collection import Collection

from knowledge.claims import claim, forget
from knowledge.config import WikiSource
from knowledge.db import utcnow
from knowledge.errors import InputError
from knowledge.wiki.indexing import IndexReport, sync_pages
from knowledge.wiki.pages import (
    PagesRead,
    RefusedPage,
    WikiPage,
    oversized_page,
    read_page_text,
)

log = structlog.get_logger(__name__)

MAX_EXPORT_BYTES = 512 * 1024 * 1024  # uncompressed, so a zip bomb is refused before it is read
MAX_SOURCE_BYTES = 256 * 1024 * 1024
"""Most bytes of page text one Confluence sync holds (a space of up to 1,000 pages of up to
``MAX_PAGE_BYTES`` each would hold 2 GB): the pages past it are refused, so they keep their sections."""
_NOTION_ID = re.compile(r"\s+[0-9a-f]{32}$")


def _kind_from_title(title: str) -> str:
    lowered = title.lower()
    if "postmortem" in lowered or "post-mortem" in lowered or "incident review" in lowered:
        return "postmortem"
    return "runbook" if "runbook" in lowered or "playbook" in lowered else "page"


def confluence_pages(source: WikiSource, environ: Mapping[str, str]) -> PagesRead:
    """The current pages of a Confluence space, as Markdown (headings kept, so sections chunk as in a folder)."""
    from knowledge.wiki.source_loaders import REFUSED, CappedConfluenceLoader, confluence_message

    token = environ.get(source.token_env or "", "") if source.token_env else None
    if source.token_env and not token:
        raise InputError(f"wiki source {source.name}: the environment variable {source.token_env} (its token) is not set")
    loader = CappedConfluenceLoader(
        url=source.url or "", username=source.username, api_key=token if source.username else None,
        token=None if source.username else token, space_key=source.space, keep_markdown_format=True,
        include_restricted_content=True, number_of_retries=1, min_retry_seconds=1, max_retry_seconds=2,
    )  # fmt: skip
    read, held = PagesRead(), 0
    try:
        for document in loader.lazy_load():  # page by page: only the pages kept stay in memory
            path = f"confluence:{source.name}/{document.metadata['id']}"
            size = len(document.page_content.encode())
            reason = document.metadata.get(REFUSED) or (
                f"the space's pages read before it are {held:,} bytes, near the {MAX_SOURCE_BYTES:,} bytes one sync "
                "may hold (MAX_SOURCE_BYTES); it keeps its sections: split the space into smaller sources"
                if held + size > MAX_SOURCE_BYTES else None
            )  # fmt: skip
            if reason:
                read.refused.append(RefusedPage(path, f"{path}: {reason}"))
                continue
            held += size
            read.pages.append(WikiPage(
                path=path,
                title=document.metadata["title"],
                kind=_kind_from_title(document.metadata["title"]),
                services=(),
                body=document.page_content,
                front_matter={"source": document.metadata.get("source", ""), "when": document.metadata.get("when", "")},
            ))  # fmt: skip
    except Exception as error:  # requests/atlassian raise their own types; the message must not carry the token
        message = confluence_message(error, token)
        raise InputError(f"wiki source {source.name}: Confluence at {source.url} failed: {message[:300]}") from None
    return read


def notion_pages(source: WikiSource) -> PagesRead:
    """Every Markdown page of a Notion export, read page by page as a folder wiki is (langchain's
    ``NotionDirectoryLoader`` fails the whole export on one page); Notion's 32-hex ids are dropped from titles."""
    root = Path(source.path or ".")
    if not root.is_dir():
        raise InputError(f"wiki source {source.name}: Notion export folder {root} does not exist")
    read = PagesRead()
    for path in sorted(path for path in root.glob("**/*.md") if path.is_file()):
        relative = path.relative_to(root)
        name = f"notion:{source.name}/{relative.as_posix()}"
        try:
            body = read_page_text(path, name)
        except InputError as error:
            read.refused.append(RefusedPage(name, str(error)))
            continue
        heading = next((line[2:].strip() for line in body.splitlines() if line.startswith("# ")), "")
        title = heading or _NOTION_ID.sub("", relative.stem)
        read.pages.append(WikiPage(path=name, title=title, kind=_kind_from_title(title), services=(), body=body))
    return read


def _check_export(path: Path, name: str) -> None:
    if not zipfile.is_zipfile(path):
        raise InputError(f"wiki source {name}: {path} is not a Slack export zip")
    with zipfile.ZipFile(path) as export:
        if sum(info.file_size for info in export.infolist()) > MAX_EXPORT_BYTES:
            raise InputError(f"wiki source {name}: {path} unpacks to over {MAX_EXPORT_BYTES} bytes; export fewer channels")


def slack_pages(source: WikiSource, incident_channel_pattern: str) -> PagesRead:
    """One page per incident channel (names matching the pattern), its messages in order, a section per day;
    a channel with an unreadable day file is refused, not stored without that day."""
    from knowledge.wiki.source_loaders import CheckedSlackLoader

    path = Path(source.path or ".")
    _check_export(path, source.name)
    by_channel: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    loader = CheckedSlackLoader(path, incident_channel_pattern)
    for document in loader.lazy_load():
        channel = document.metadata["channel"]
        if not fnmatch.fnmatch(channel, incident_channel_pattern) or not document.page_content.strip():
            continue
        try:  # "1e20" or "inf" parse as floats but are no moment: that message is left out, not the export
            moment = datetime.fromtimestamp(float(document.metadata["timestamp"]), UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            continue
        by_channel[channel].append((moment, str(document.metadata.get("user", "")), document.page_content))
    read = PagesRead(refused=[RefusedPage(f"slack:{source.name}/{channel}", f"slack:{source.name}/{channel}: {reason}")
                              for channel, reason in sorted(loader.refused.items())])  # fmt: skip
    for channel, messages in sorted(by_channel.items()):
        if channel in loader.refused:
            continue
        lines: list[str] = []
        day = ""
        for moment, user, text in sorted(messages):
            if moment.date().isoformat() != day:
                day = moment.date().isoformat()
                lines.append(f"\n## {day}\n")
            lines.append(f"{moment:%H:%M} {user}: {text}\n")
        path, body = f"slack:{source.name}/{channel}", "\n".join(lines)
        too_large = oversized_page(path, len(body.encode()))  # day files under the limit can add up past it
        if too_large:
            read.refused.append(RefusedPage(path, too_large))
            continue
        read.pages.append(WikiPage(path=path, title=f"#{channel} (Slack incident channel)",
                                   kind="postmortem", services=(), body=body))  # fmt: skip
    return read


def source_pages(source: WikiSource, environ: Mapping[str, str], incident_channel_pattern: str) -> PagesRead:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # langchain-community announces its own sunset
        if source.kind == "confluence":
            return confluence_pages(source, environ)
        if source.kind == "notion":
            return notion_pages(source)
        return slack_pages(source, incident_channel_pattern)


def sync_source(
    source: WikiSource, collection: Collection, environ: Mapping[str, str], incident_channel_pattern: str = "inc-*"
) -> IndexReport:
    """Bring the wiki index in line with one source: only its changed sections are embedded again; a page
    the source could not give this time is refused and keeps its sections."""
    read = source_pages(source, environ, incident_channel_pattern)
    prefix = f"{source.kind}:{source.name}/"
    return sync_pages(read, collection, lambda chunk_id: chunk_id.startswith(prefix))


def source_failure(error: Exception) -> str:
    """Why a source could not be synced: culprit's own message, else the error's type and first words
    (a loader parsing a damaged export, a wiki's API answering something unexpected)."""
    if isinstance(error, InputError):
        return str(error)
    return f"{type(error).__name__}: {str(error)[:300]}"


WIKI_SYNCS = "wiki_sync"  # claims keyed "<kind>:<name>:<slot>", one slot per sync interval


@dataclass(frozen=True)
class SourceSyncResult:
    """One source's scheduled sync: skipped (another replica has the slot), its counts, the pages it
    refused (each with its reason), or its error."""

    source: str
    synced: bool
    counts: dict[str, int] = field(default_factory=dict)
    error: str = ""
    refused: list[RefusedPage] = field(default_factory=list)


def sync_wiki_sources(
    sources: list[WikiSource],
    collection: Collection,
    database_url: str,
    minutes: int,
    environ: Mapping[str, str],
    incident_channel_pattern: str = "inc-*",
) -> list[SourceSyncResult]:
    """One scheduler tick: each source is synced by the one replica that claims its slot; a failing
    source is reported (its token never shown) and the others still sync."""
    slot = int(utcnow().timestamp()) // (60 * minutes)
    results = []
    for source in sources:
        if not claim(WIKI_SYNCS, f"{source.kind}:{source.name}:{slot}", database_url):
            results.append(SourceSyncResult(source.name, synced=False))
            continue
        try:
            report = sync_source(source, collection, environ, incident_channel_pattern)
        except Exception as error:  # noqa: BLE001 - a loader's own parse error must not end the tick for the others
            reason = source_failure(error)
            log.warning("wiki source sync failed", source=source.name, error=reason)
            results.append(SourceSyncResult(source.name, synced=True, error=reason))
            continue
        counts = report.counts()
        if report.added or report.updated or report.removed:
            log.info("wiki source synced", source=source.name, **counts)
        for refused in report.refused:
            log.warning("wiki page refused, its indexed sections kept", source=source.name, page=refused.page,
                        reason=refused.reason)  # fmt: skip
        results.append(SourceSyncResult(source.name, synced=True, counts=counts, refused=report.refused))
    forget([WIKI_SYNCS], utcnow() - timedelta(days=1), database_url)
    return results
