"""Load the demo files through the same ingestion a real team's files go through.

Nothing here is demo-specific on purpose: if the demo loads, the catalog,
CODEOWNERS, history and wiki ingestion work end to end, and loading twice shows
that each of them is idempotent.
"""

from __future__ import annotations

from collections.abc import Callable

from chromadb.api.models.Collection import Collection
from sqlalchemy import func, select

from knowledge.db import migrate, session_scope
from knowledge.demo.files import DemoFiles
from knowledge.ingest.catalog import ingest_catalog
from knowledge.ingest.codeowners import ingest_codeowners
from knowledge.ingest.history import ingest_cases, ingest_commits
from knowledge.ingest.progress import Progress, Silent
from knowledge.incidents import RootCause
from knowledge.ingest.report import LoadReport
from knowledge.wiki.indexing import index_wiki
from knowledge.wiki.postmortems import SOURCE as POSTMORTEM_SOURCE
from knowledge.wiki.postmortems import link_postmortems


def load_demo(
    files: DemoFiles,
    database_url: str,
    wiki: Collection,
    redact: Callable[[str], str],
    progress: Progress | None = None,
) -> list[LoadReport]:
    """Migrate the database and ingest every demo file (the wiki into ``wiki``); one report per kind of record.

    ``redact`` is what every stored incident's words pass through (``tools.rca.store.stored_words``)."""
    progress = progress or Silent()
    return load_records(files, database_url, redact, progress) + load_wiki(files, database_url, wiki, redact, progress)


def load_records(files: DemoFiles, url: str, redact: Callable[[str], str], progress: Progress) -> list[LoadReport]:
    """Services, ownership rules, changes and past incidents (their words through ``redact``): everything that
    lives in the database."""
    progress.start("preparing the database")
    migrate(url)
    progress.start("loading the service catalog and CODEOWNERS")
    reports = [ingest_catalog([files.catalog], url), ingest_codeowners(files.codeowners, url)]
    reports.append(ingest_commits(files.commits, url, progress=progress))
    reports.append(ingest_cases(files.cases, url, redact, progress=progress))
    return reports


def load_wiki(
    files: DemoFiles, url: str, wiki: Collection, redact: Callable[[str], str], progress: Progress
) -> list[LoadReport]:
    """Index the wiki in Chroma (only changed chunks are embedded) and link its postmortems."""
    progress.start("indexing wiki pages")
    done = 0

    def advance(embedded: int, total: int) -> None:
        nonlocal done
        if done == 0:
            progress.start("embedding wiki chunks", total=total)
        progress.advance(embedded - done)
        done = embedded

    indexed = index_wiki(files.wiki, wiki, advance)
    chunks = LoadReport(
        kind="wiki chunks",
        source=str(files.wiki),
        new=indexed.added,
        updated=indexed.updated,
        already_present=indexed.unchanged,
        bad_lines=[refused.reason for refused in indexed.refused],
    )
    before = _postmortem_causes(url)
    linked = link_postmortems(indexed.pages, url, redact)
    new = _postmortem_causes(url) - before
    postmortems = LoadReport(
        kind="postmortem root causes", source=str(files.wiki), new=new, already_present=len(linked.linked) - new
    )
    postmortems.bad_lines.extend(linked.skipped)
    return [chunks, postmortems]


def _postmortem_causes(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(
            select(func.count()).select_from(RootCause).where(RootCause.source == POSTMORTEM_SOURCE)
        ) or 0
