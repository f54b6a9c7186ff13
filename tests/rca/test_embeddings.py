"""Change embeddings are computed once, kept on disk by change id, and mean something."""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from knowledge.changes import ChangeRecord
from tests.changes import change_record
from tools.rca.embeddings import ChangeEmbeddings, change_text

NOW = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def minilm() -> Callable[[list[str]], np.ndarray]:
    """The packaged MiniLM, loaded once for the session (about five seconds)."""
    from knowledge.embeddings import embed

    embed(["load"])
    return embed


def _change(change_id: str, title: str, *paths: str) -> ChangeRecord:
    return change_record(change_id, title, NOW, paths)


def test_embeddings_persist_by_id_and_are_not_recomputed(tmp_path: Path, minilm) -> None:  # noqa: ANN001
    calls: list[int] = []

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return minilm(texts)

    changes = [
        _change("a1", "ssl: rework certificate verification", "lib/vtls/openssl.c"),
        _change("b2", "docs: fix typo in the manual", "docs/MANUAL.md"),
        _change("c3", "ftp: simplify passive mode listing", "lib/ftp.c"),
    ]
    store = ChangeEmbeddings(tmp_path, embedder=counting)
    assert store.add(changes) == 3 and calls == [3]
    assert store.add(changes) == 0 and calls == [3]

    reopened = ChangeEmbeddings(tmp_path, embedder=counting)
    assert len(reopened) == 3 and reopened.missing(changes) == []
    vectors, known = reopened.vectors(["c3", "zz", "a1"])
    assert known.tolist() == [True, False, True]
    assert np.allclose(np.linalg.norm(vectors[[0, 2]], axis=1), 1.0, atol=1e-4)
    assert not vectors[1].any()

    incident = minilm(["TLS handshake fails: the server certificate is rejected"])[0]
    similarity = reopened.vectors(["a1", "b2", "c3"])[0] @ incident
    assert int(np.argmax(similarity)) == 0


def test_concurrent_first_time_adds_keep_one_row_per_change(tmp_path: Path, minilm) -> None:  # noqa: ANN001
    """Several RCAs on a fresh store embed the same window at once; all must succeed."""
    threads_at_once = 4
    all_embedded = threading.Barrier(threads_at_once)

    def embed_then_wait(texts: list[str]) -> np.ndarray:
        vectors = minilm(texts)
        all_embedded.wait(timeout=30)  # every thread has its vectors before any stores them
        return vectors

    changes = [
        _change(f"c{index}", title, path)
        for index, (title, path) in enumerate(
            [
                ("ssl: rework certificate verification", "lib/vtls/openssl.c"),
                ("ftp: simplify passive mode listing", "lib/ftp.c"),
                ("http2: flush pending data on close", "lib/http2.c"),
                ("docs: fix typo in the manual", "docs/MANUAL.md"),
                ("cookie: reject names with control bytes", "lib/cookie.c"),
            ]
        )
    ]
    store = ChangeEmbeddings(tmp_path, embedder=embed_then_wait)
    # Each RCA sees an overlapping window of the same fresh store; together they cover all five.
    windows = [changes[start : start + 3] for start in range(threads_at_once)]
    with ThreadPoolExecutor(max_workers=threads_at_once) as pool:
        added = list(pool.map(store.add, windows))

    assert sum(added) == len(changes)
    reopened = ChangeEmbeddings(tmp_path, embedder=minilm)
    assert len(reopened) == len(store) == len(changes)
    stored, known = reopened.vectors([change.id for change in changes])
    assert known.all()
    assert np.allclose(stored, minilm([change_text(change) for change in changes]), atol=1e-4)


def test_a_process_saving_later_keeps_what_another_dropped_and_added(tmp_path: Path) -> None:
    """A replica that loaded the vectors before `ingest names` dropped some (their changes gained
    functions) must not write them back when it next saves one it embedded itself."""

    def ones(texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 384))

    serving = ChangeEmbeddings(tmp_path, embedder=ones)
    serving.add([_change("a1", "http: tidy buffers", "lib/http.c"), _change("b1", "tls: retry", "lib/tls.c")])
    backfill = ChangeEmbeddings(tmp_path, embedder=ones)
    assert backfill.forget(["a1", "unknown"]) == 1
    backfill.add([_change("c1", "dns: cache", "lib/dns.c"), _change("c2", "dns: expire", "lib/dns.c")])

    serving.add([_change("d1", "ftp: pasv", "lib/ftp.c")])

    on_disk = ChangeEmbeddings(tmp_path)
    assert sorted(change_id for change_id in ("a1", "b1", "c1", "c2", "d1") if change_id in on_disk) == [
        "b1", "c1", "c2", "d1"
    ]
    assert len(on_disk) == 4 and on_disk.vectors(["b1", "d1"])[1].all()


def _petabyte_header() -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**15, 384)})
    return header.getvalue() + b"\0" * 64


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


TWO_ROWS = _npy(np.zeros((2, 384), dtype=np.float32))
TWO_IDS = b'["a1", "b2"]'


@pytest.mark.parametrize(
    ("vectors", "ids", "why"),
    [
        (TWO_ROWS, b'["a1", "b2"', "change-vectors.ids.json: invalid JSON"),
        (TWO_ROWS, b"[" * 2_000, "change-vectors.ids.json: JSON nested too deeply"),
        (TWO_ROWS, b'[["a1"], ["b2"]]', "change-vectors.ids.json: not a list of change ids"),
        (TWO_ROWS, json.dumps(["a1", "b" * 10_000_000]).encode(), "change-vectors.ids.json: over 2,048 bytes"),
        (_npy(np.zeros((2, 10), dtype=np.float32)), TWO_IDS, "change-vectors.npy: not 384 numbers a change"),
        (_npy(np.array(["x", "y"])), TWO_IDS, "change-vectors.npy: not 384 numbers a change"),
        (_petabyte_header(), TWO_IDS, "change-vectors.npy: its header claims"),
        (None, TWO_IDS, "change-vectors.npy: not a regular file (a FIFO)"),
    ],
    ids=["cut short", "nested", "not ids", "huge", "narrow", "strings", "petabytes", "fifo"],
)
def test_a_damaged_or_hostile_cache_is_set_aside_with_a_warning_not_raised(
    tmp_path: Path, vectors: bytes | None, ids: bytes, why: str
) -> None:
    # A damaged cache raised from every RCA (load_resources opens it), or waited on a FIFO for good.
    if vectors is None:
        os.mkfifo(tmp_path / "change-vectors.npy")
    else:
        (tmp_path / "change-vectors.npy").write_bytes(vectors)
    (tmp_path / "change-vectors.ids.json").write_bytes(ids)

    def ones(texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 384), dtype=np.float32)

    with capture_logs() as logs:
        store = ChangeEmbeddings(tmp_path, embedder=ones)
    assert len(store) == 0
    [warning] = [entry for entry in logs if entry["event"] == "change_embeddings_unreadable"]
    assert warning["log_level"] == "warning" and why in warning["error"]

    assert store.add([_change("a1", "ssl: rework certificate verification", "lib/vtls/openssl.c")]) == 1
    assert len(ChangeEmbeddings(tmp_path, embedder=ones)) == 1  # embedded anew and written over
