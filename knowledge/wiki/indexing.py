"""Bring the Chroma collection in line with a wiki folder, embedding only what changed."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chromadb.api.models.Collection import Collection

from knowledge.errors import InputError
from knowledge.wiki.pages import (
    PagesRead,
    RefusedPage,
    WikiChunk,
    WikiPage,
    find_pages,
    read_page,
    split_into_chunks,
)
from knowledge.wiki.store import REVISION_KEY, embed_sections

REMOTE_KINDS = ("confluence:", "notion:", "slack:")
EMBED_BATCH = 64
"""Sections per upsert; the progress bar moves once per batch."""

Progress = Callable[[int, int], None]
"""Called with (chunks embedded so far, chunks to embed)."""


@dataclass
class IndexReport:
    """What an ingest did, in chunks; ``pages`` lists every page read, for postmortem linking, and
    ``refused`` every page that could not be read (its sections already indexed were kept)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    pages: list[WikiPage] = field(default_factory=list)
    refused: list[RefusedPage] = field(default_factory=list)

    @property
    def chunks(self) -> int:
        return self.added + self.updated + self.unchanged

    def counts(self) -> dict[str, int]:
        return {
            "pages": len(self.pages),
            "chunks": self.chunks,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
        }


def read_wiki(root: Path) -> PagesRead:
    """Every page under ``root``, parsed; a page that cannot be read is refused with its reason and the
    others still load, so one author's typo never holds the rest of the wiki back."""
    read = PagesRead()
    for path in find_pages(root):
        try:
            read.pages.append(read_page(root, path))
        except InputError as error:
            read.refused.append(RefusedPage(path.relative_to(root).as_posix(), str(error)))
    return read


def index_wiki(root: Path, collection: Collection, progress: Progress | None = None) -> IndexReport:
    """Sync ``collection`` with the pages under ``root``: upsert changed chunks, delete vanished ones
    (those of the folder: pages synced from Confluence, Notion or Slack stay)."""
    return sync_pages(read_wiki(root), collection, lambda chunk_id: not is_remote_page(chunk_id), progress)


def is_remote_page(page_or_chunk: str) -> bool:
    """Pages synced from a wiki source are named ``<kind>:<source>/...`` (see :mod:`knowledge.wiki.sources`)."""
    return page_or_chunk.startswith(REMOTE_KINDS)


def sync_pages(
    read: PagesRead, collection: Collection, owns: Callable[[str], bool], progress: Progress | None = None
) -> IndexReport:
    """Bring the chunks ``owns`` accepts in line with the pages read: embed only new or changed sections,
    delete the ones whose page or section is gone. A refused page is not gone: its chunks stay as they were."""
    chunks = [chunk for page in read.pages for chunk in split_into_chunks(page)]
    report = IndexReport(pages=read.pages, refused=read.refused)
    kept = {refused.page for refused in read.refused}
    stored = {
        chunk_id: hashed
        for chunk_id, (hashed, page) in _stored_hashes(collection).items()
        if owns(chunk_id) and page not in kept
    }

    changed = [chunk for chunk in chunks if stored.get(chunk.chunk_id) != chunk.content_hash]
    report.added = sum(1 for chunk in changed if chunk.chunk_id not in stored)
    report.updated = len(changed) - report.added
    report.unchanged = len(chunks) - len(changed)
    upsert_chunks(collection, changed, progress)

    current = {chunk.chunk_id for chunk in chunks}
    vanished = [chunk_id for chunk_id in stored if chunk_id not in current]
    if vanished:
        collection.delete(ids=vanished)
    report.removed = len(vanished)

    if changed or vanished:
        mark_revision(collection, chunks)
    return report


def upsert_chunks(
    collection: Collection, chunks: Sequence[WikiChunk], progress: Progress | None = None
) -> None:
    """Embed with the packaged MiniLM in batches and upsert, reporting progress per batch."""
    for start in range(0, len(chunks), EMBED_BATCH):
        batch = chunks[start : start + EMBED_BATCH]
        documents = [chunk.document for chunk in batch]
        collection.upsert(
            ids=[chunk.chunk_id for chunk in batch],
            documents=documents,
            embeddings=embed_sections(documents),
            metadatas=[chunk.metadata() for chunk in batch],
        )
        if progress:
            progress(min(start + EMBED_BATCH, len(chunks)), len(chunks))


def mark_revision(collection: Collection, chunks: Sequence[WikiChunk]) -> None:
    """Record a fingerprint of the content so searchers in other processes rebuild their BM25."""
    digest = hashlib.sha256()
    for chunk_id, content_hash in sorted((chunk.chunk_id, chunk.content_hash) for chunk in chunks):
        digest.update(f"{chunk_id}\0{content_hash}\n".encode())
    collection.modify(metadata={REVISION_KEY: digest.hexdigest()[:16]})


def _stored_hashes(collection: Collection) -> dict[str, tuple[str, str]]:
    """Each stored chunk's content hash and page."""
    stored = collection.get(include=["metadatas"])  # type: ignore[list-item]
    return {
        chunk_id: (str((metadata or {}).get("content_hash", "")), str((metadata or {}).get("page", "")))
        for chunk_id, metadata in zip(stored["ids"], stored["metadatas"] or [], strict=True)
    }
