"""Bring the Chroma collection in line with a wiki folder, embedding only what changed."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chromadb.api.models.Collection import Collection

from knowledge.wiki.pages import WikiChunk, WikiPage, find_pages, read_page, split_into_chunks
from knowledge.wiki.store import REVISION_KEY, embed_sections

REMOTE_KINDS = ("confluence:", "notion:", "slack:")
EMBED_BATCH = 64
"""Sections per upsert; the progress bar moves once per batch."""

Progress = Callable[[int, int], None]
"""Called with (chunks embedded so far, chunks to embed)."""


@dataclass
class IndexReport:
    """What an ingest did, in chunks; ``pages`` lists every page read, for postmortem linking."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    pages: list[WikiPage] = field(default_factory=list)

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


def read_wiki(root: Path) -> list[WikiPage]:
    """Every page under ``root``, parsed; the first bad page stops the ingest with its name."""
    return [read_page(root, path) for path in find_pages(root)]


def index_wiki(root: Path, collection: Collection, progress: Progress | None = None) -> IndexReport:
    """Sync ``collection`` with the pages under ``root``: upsert changed chunks, delete vanished ones
    (those of the folder: pages synced from Confluence, Notion or Slack stay)."""
    return sync_pages(read_wiki(root), collection, lambda chunk_id: not is_remote_page(chunk_id), progress)


def is_remote_page(page_or_chunk: str) -> bool:
    """Pages synced from a wiki source are named ``<kind>:<source>/...`` (see :mod:`knowledge.wiki.sources`)."""
    return page_or_chunk.startswith(REMOTE_KINDS)


def sync_pages(
    pages: list[WikiPage], collection: Collection, owns: Callable[[str], bool], progress: Progress | None = None
) -> IndexReport:
    """Bring the chunks ``owns`` accepts in line with ``pages``: embed only new or changed sections,
    delete the ones whose page or section is gone."""
    chunks = [chunk for page in pages for chunk in split_into_chunks(page)]
    report = IndexReport(pages=pages)
    stored = {chunk_id: hashed for chunk_id, hashed in _stored_hashes(collection).items() if owns(chunk_id)}

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


def _stored_hashes(collection: Collection) -> dict[str, str]:
    stored = collection.get(include=["metadatas"])  # type: ignore[list-item]
    return {
        chunk_id: str((metadata or {}).get("content_hash", ""))
        for chunk_id, metadata in zip(stored["ids"], stored["metadatas"] or [], strict=True)
    }
