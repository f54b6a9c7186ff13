"""Change embeddings computed once and kept on disk, keyed by change id.

MiniLM embeds only about a hundred texts a second on a small CPU, so a query
must embed only the incident text; changes are embedded ahead of time by
``culprit train`` and ``culprit embed-changes`` (or, failing that, the first
time an RCA sees them) and read back from here.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np
import structlog

from knowledge.changes import ChangeRecord
from knowledge.lines import json_line
from knowledge.model_files import open_regular_file

DIMENSIONS = 384
# A change id is a commit sha or a change event's id: the ids file may hold this much per stored vector.
_MAX_ID_BYTES = 1024
log = structlog.get_logger(__name__)
_MAX_PATHS = 6
_MAX_FUNCTIONS = 6


def change_text(change: ChangeRecord) -> str:
    """What is embedded for a change: its title, the first paths and the first functions it touched.

    Kept short on purpose: the body is matched lexically by BM25, and short
    texts embed several times faster on a CPU. A change whose history has no
    functions embeds exactly as before, so cached vectors stay valid; one whose
    functions ``culprit ingest names`` reads later has its vector dropped
    (:meth:`ChangeEmbeddings.forget`) and embedded again.
    """
    paths = " ".join(change.paths[:_MAX_PATHS])
    functions = " ".join(f"{name}()" for name in change.functions[:_MAX_FUNCTIONS])
    return f"{change.title}\n{paths}\n{functions}".strip()


class ChangeEmbeddings:
    """A vector per change id in ``<directory>/change-vectors.npy`` with the ids beside it."""

    def __init__(self, directory: Path, embedder: Callable[[list[str]], np.ndarray] | None = None) -> None:
        self.directory = Path(directory)
        self._embedder = embedder
        self._lock = threading.Lock()
        self._index: dict[str, int] = {}
        self._vectors = np.zeros((0, DIMENSIONS), dtype=np.float32)
        self._loaded: tuple[int, int, int] | None = None
        self._load()

    @property
    def _vectors_path(self) -> Path:
        return self.directory / "change-vectors.npy"

    @property
    def _ids_path(self) -> Path:
        return self.directory / "change-vectors.ids.json"

    def _written(self) -> tuple[int, int, int] | None:
        """Which write of the ids file is on disk (each save replaces the file)."""
        try:
            stat = self._ids_path.stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def _load(self) -> None:
        """Read the files back; ones that cannot be this cache's are set aside with a warning, not raised
        (every RCA opens the cache): the changes are embedded anew and the files written over."""
        self._loaded = self._written()
        if not (self._vectors_path.exists() and self._ids_path.exists()):
            return
        try:
            ids, vectors = _read_cache(self._vectors_path, self._ids_path)
        except ValueError as error:
            log.warning("change_embeddings_unreadable", path=str(self.directory), error=str(error))
            return
        if len(ids) == len(vectors):
            self._index = {change_id: row for row, change_id in enumerate(ids)}
            self._vectors = vectors.astype(np.float32)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, change_id: object) -> bool:
        return change_id in self._index

    def missing(self, changes: Sequence[ChangeRecord]) -> list[ChangeRecord]:
        return [change for change in changes if change.id not in self._index]

    def add(
        self,
        changes: Sequence[ChangeRecord],
        batch: int = 256,
        on_progress: Callable[[int], None] | None = None,
        save_every: int = 4096,
    ) -> int:
        """Embed the changes not stored yet; returns how many were new.

        Saves every ``save_every`` changes, so a long run that is interrupted
        keeps what it embedded."""
        todo = list({change.id: change for change in self.missing(changes)}.values())
        if not todo:
            return 0
        embedder = self._embedder or _default_embedder()
        added = 0
        for start in range(0, len(todo), save_every):
            part = todo[start : start + save_every]
            vectors = []
            for offset in range(0, len(part), batch):
                chunk = part[offset : offset + batch]
                vectors.append(embedder([change_text(change) for change in chunk]))
                if on_progress:
                    on_progress(len(chunk))
            added += self._store(part, np.vstack(vectors).astype(np.float32))
        return added

    def _reload_if_rewritten(self) -> None:
        """Start from the files when another process rewrote them since this one read them
        (``embed-changes``, ``ingest names`` dropping vectors, another replica), so saving
        never brings back vectors it dropped nor loses ones it added."""
        if self._written() != self._loaded:
            self._load()

    def _store(self, changes: list[ChangeRecord], fresh: np.ndarray) -> int:
        with self._lock:
            self._reload_if_rewritten()
            # Another thread may have stored some of these while we were embedding:
            # keep one row per id, or ids and rows drift apart.
            unseen = [row for row, change in enumerate(changes) if change.id not in self._index]
            if not unseen:
                return 0
            offset = len(self._vectors)
            self._vectors = np.vstack([self._vectors, fresh[unseen]])
            for position, row in enumerate(unseen):
                self._index[changes[row].id] = offset + position
            self._save()
        return len(unseen)

    def forget(self, change_ids: Sequence[str]) -> int:
        """Drop the vectors of these changes, so the next ``embed-changes`` or RCA embeds them again;
        returns how many were stored.

        For changes whose embedded text changed after they were embedded: ``culprit ingest
        names`` reading the functions of changes stored before names were read."""
        with self._lock:
            self._reload_if_rewritten()
            dropped = {change_id for change_id in change_ids if change_id in self._index}
            if not dropped:
                return 0
            kept = sorted((row, change_id) for change_id, row in self._index.items() if change_id not in dropped)
            self._vectors = self._vectors[[row for row, _change_id in kept]]
            self._index = {change_id: position for position, (_row, change_id) in enumerate(kept)}
            self._save()
        return len(dropped)

    def _save(self) -> None:
        """Write to temporary files and rename, so a reader never sees half a file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        ids = [""] * len(self._index)
        for change_id, row in self._index.items():
            ids[row] = change_id
        vectors_tmp = self._vectors_path.with_suffix(f".{os.getpid()}.tmp.npy")
        ids_tmp = self._ids_path.with_suffix(f".{os.getpid()}.tmp")
        np.save(vectors_tmp, self._vectors)
        ids_tmp.write_text(json.dumps(ids))
        os.replace(vectors_tmp, self._vectors_path)
        os.replace(ids_tmp, self._ids_path)
        self._loaded = self._written()

    def vectors(self, change_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Rows for the ids (zeros where unknown) and a mask of which were known."""
        rows = np.array([self._index.get(change_id, -1) for change_id in change_ids], dtype=np.int64)
        known = rows >= 0
        result = np.zeros((len(change_ids), DIMENSIONS), dtype=np.float32)
        if known.any():
            result[known] = self._vectors[rows[known]]
        return result, known


def _read_cache(vectors_path: Path, ids_path: Path) -> tuple[list[str], np.ndarray]:
    """The stored ids and vectors; ValueError says which file cannot be them, and why.

    The vectors' header is checked against the file's size before numpy allocates what it claims,
    and the ids file against the vectors' count before it is parsed, so neither a header claiming
    petabytes nor gigabytes of JSON is read."""
    vectors = _read_named(vectors_path, _read_vectors)
    return _read_named(ids_path, partial(_read_ids, rows=len(vectors))), vectors


T = TypeVar("T")


def _read_named(path: Path, read: Callable[[BinaryIO], T]) -> T:
    """``read`` of the regular file at ``path``; what stops it is a ValueError naming the file."""
    try:
        with open_regular_file(path) as handle:
            return read(handle)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path.name}: {error}") from None


def _read_vectors(handle: BinaryIO) -> np.ndarray:
    """A float array of ``DIMENSIONS`` columns whose header matches the bytes that follow it."""
    version = np.lib.format.read_magic(handle)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"numpy format {version} is not one culprit writes")
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _fortran_order, dtype = read_header(handle)
    if dtype.kind != "f" or len(shape) != 2 or shape[1] != DIMENSIONS:
        raise ValueError(f"not {DIMENSIONS} numbers a change ({dtype}, shape {shape})")
    claimed = shape[0] * DIMENSIONS * dtype.itemsize
    held = os.fstat(handle.fileno()).st_size - handle.tell()
    if claimed != held:
        raise ValueError(f"its header claims {shape[0]:,} vectors ({claimed:,} bytes), the file holds {held:,}")
    handle.seek(0)
    return np.load(handle, allow_pickle=False)


def _read_ids(handle: BinaryIO, rows: int) -> list[str]:
    """A JSON list of change ids, read only up to what ``rows`` ids can take."""
    limit = max(rows, 1) * _MAX_ID_BYTES
    raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise ValueError(f"over {limit:,} bytes for {rows} vectors")
    ids = json_line(raw)
    if not isinstance(ids, list) or not all(isinstance(change_id, str) for change_id in ids):
        raise ValueError("not a list of change ids")
    return ids


def _default_embedder() -> Callable[[list[str]], np.ndarray]:
    from knowledge.embeddings import embed

    return embed


@dataclass
class EmbeddingRun:
    """What a precompute run found and did."""

    changes: int
    embedded: int
    seconds: float

    @property
    def already_cached(self) -> int:
        return self.changes - self.embedded


def embed_store_changes(
    store: ChangeEmbeddings,
    database_url: str,
    since: datetime | None = None,
    repo: str | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    page: int = 1000,
) -> EmbeddingRun:
    """Embed the ingested changes (landed since ``since``) that the cache lacks.

    Without it the first RCA on a fresh store embeds its whole window while the
    responder waits. Only ids are read for changes already cached, so a rerun
    costs one query; ``on_start`` is told how many need embedding.
    """
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from knowledge.changes import Change
    from knowledge.db import session_scope

    began = time.perf_counter()
    with session_scope(database_url) as session:
        query = select(Change.id)
        if since is not None:
            query = query.where(Change.landed_time >= since)
        if repo:
            query = query.where(Change.repo == repo)
        ids = list(session.scalars(query))
    todo = [change_id for change_id in ids if change_id not in store]
    if on_start:
        on_start(len(todo))
    embedded = 0
    for start in range(0, len(todo), page):
        with session_scope(database_url) as session:
            rows = session.scalars(
                select(Change).where(Change.id.in_(todo[start : start + page])).options(selectinload(Change.files))
            )
            changes = [change.record() for change in rows]
        embedded += store.add(changes, on_progress=on_progress)
    return EmbeddingRun(changes=len(ids), embedded=embedded, seconds=round(time.perf_counter() - began, 2))
