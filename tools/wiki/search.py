"""Find the runbook section or postmortem that answers a responder's question.

Embeddings catch paraphrases ("checkout hangs" for "payment latency") and BM25
catches the exact tokens responders paste (error codes, metric names, incident
ids). Each method's scores are scaled to 0..1 over its own top sections and
added with equal weight (relative score fusion), so a section that one method
is sure of keeps its lead; this beats either method alone on the demo wiki's
questions (see ``culprit wiki evaluate`` and docs/wiki.md). Results are one hit
per page, best section first.
"""

from __future__ import annotations

import threading
from typing import Literal

import bm25s
import numpy as np
import Stemmer
from chromadb.api.models.Collection import Collection

from knowledge.wiki.store import wiki_revision
from tools.rca.answers import IncidentQuery, WikiHit

Method = Literal["hybrid", "bm25", "embedding"]
METHODS: tuple[Method, ...] = ("hybrid", "bm25", "embedding")

DEPTH = 50
"""Sections taken from each method before fusion."""
SNIPPET_CHARS = 280

_stemmer = Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stop words dropped, stemmed: "timeouts" and "timed out" meet at "time"."""
    return bm25s.tokenize(
        texts, stopwords="en", stemmer=_stemmer, return_ids=False, show_progress=False
    )


class WikiSearcher:
    """Hybrid search over one snapshot of the wiki collection.

    BM25 lives in memory, built from the collection's own documents, so both
    rankings always see the same chunks; :func:`searcher_for` rebuilds it when
    an ingest changes the collection's revision.
    """

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self.revision = wiki_revision(collection)
        stored = collection.get(include=["documents", "metadatas"])  # type: ignore[list-item]
        self.ids: list[str] = list(stored["ids"])
        self.documents: list[str] = list(stored["documents"] or [])
        self.metadatas = [dict(metadata or {}) for metadata in stored["metadatas"] or []]
        self.position = {chunk_id: index for index, chunk_id in enumerate(self.ids)}
        self.bm25 = bm25s.BM25()
        if self.ids:
            self.bm25.index(tokenize(self.documents), show_progress=False)

    def __len__(self) -> int:
        return len(self.ids)

    def search(
        self, query: str, service: str | None = None, k: int = 5, method: Method = "hybrid"
    ) -> list[WikiHit]:
        """The ``k`` best pages for ``query``, each with its best-matching section."""
        if not self.ids or not query.strip():
            return []
        rankings: list[list[tuple[str, float]]] = []
        if method in ("hybrid", "bm25"):
            rankings.append(self._bm25_ranking(query, service))
        if method in ("hybrid", "embedding"):
            rankings.append(self._embedding_ranking(query, service))
        return self._best_per_page(_fuse(rankings), k)

    def _bm25_ranking(self, query: str, service: str | None) -> list[tuple[str, float]]:
        tokens = tokenize([query])[0]
        if not tokens:
            return []
        scores = np.asarray(self.bm25.get_scores(tokens), dtype=np.float32)
        if service:
            scores = scores * self._service_mask(service)
        depth = min(DEPTH, len(scores))
        top = np.argpartition(-scores, depth - 1)[:depth]
        return [(self.ids[i], float(scores[i])) for i in top[np.argsort(-scores[top])] if scores[i] > 0]

    def _embedding_ranking(self, query: str, service: str | None) -> list[tuple[str, float]]:
        result = self.collection.query(
            query_texts=[query],
            n_results=min(DEPTH, len(self.ids)),
            where={"services": {"$contains": service}} if service else None,
            include=["distances"],  # type: ignore[list-item]
        )
        distances = (result["distances"] or [[]])[0]
        return [
            (chunk_id, 1.0 - float(distance))  # cosine distance -> similarity
            for chunk_id, distance in zip(result["ids"][0], distances, strict=True)
            if chunk_id in self.position
        ]

    def _service_mask(self, service: str) -> np.ndarray:
        return np.array(
            [service in metadata.get("services", ()) for metadata in self.metadatas], dtype=np.float32
        )

    def _best_per_page(self, fused: list[tuple[str, float]], k: int) -> list[WikiHit]:
        hits: dict[str, WikiHit] = {}
        for chunk_id, score in fused:
            index = self.position[chunk_id]
            metadata = self.metadatas[index]
            page = str(metadata.get("page", ""))
            if page in hits:
                continue
            hits[page] = WikiHit(
                page=page,
                heading=str(metadata.get("heading", "")),
                snippet=_snippet(self.documents[index]),
                score=round(score, 6),
                title=str(metadata.get("title", "")),
            )
            if len(hits) == k:
                break
        return list(hits.values())


def _fuse(rankings: list[list[tuple[str, float]]]) -> list[tuple[str, float]]:
    """Relative score fusion: min-max scale each method's scores, then add them.

    Reciprocal rank fusion was tried first; it lets sections that both methods
    rank mediocre outvote the one BM25 is sure of ("what caused INC-1290?"), and
    scored lower on both demo wikis. A single ranking keeps its order.
    """
    fused: dict[str, float] = {}
    for ranking in rankings:
        if not ranking:
            continue
        low, high = min(score for _, score in ranking), max(score for _, score in ranking)
        for chunk_id, score in ranking:
            scaled = (score - low) / (high - low) if high > low else 1.0
            fused[chunk_id] = fused.get(chunk_id, 0.0) + scaled
    return sorted(fused.items(), key=lambda item: item[1], reverse=True)


def _snippet(document: str) -> str:
    body = document.split("\n", 1)[-1].strip()  # the first line is the heading path
    text = " ".join(body.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rsplit(" ", 1)[0] + "…"


_cache: dict[str, WikiSearcher] = {}
_cache_lock = threading.Lock()


def searcher_for(collection: Collection) -> WikiSearcher:
    """The cached searcher for the collection's current revision; rebuilt after each ingest."""
    key = str(collection.id)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None or cached.revision != wiki_revision(collection):
            cached = _cache[key] = WikiSearcher(collection)
        cached.collection = collection
        return cached


def search_wiki(
    query: str,
    collection: Collection,
    service: str | None = None,
    k: int = 5,
    method: Method = "hybrid",
) -> list[WikiHit]:
    """Hybrid wiki search on a Chroma collection (embedded or on a server, see ``knowledge.wiki.store``)."""
    return searcher_for(collection).search(query, service=service, k=k, method=method)


def wiki_for_incident(incident: IncidentQuery, collection: Collection, k: int = 3) -> list[WikiHit]:
    """Pages to cite beside the suggestions: the impacted service's first, then the whole wiki."""
    searcher = searcher_for(collection)
    hits = searcher.search(incident.full_text, service=incident.service, k=k) if incident.service else []
    for hit in searcher.search(incident.full_text, k=k):
        if len(hits) < k and all(hit.page != seen.page for seen in hits):
            hits.append(hit)
    return hits
