"""Change embeddings are computed once, kept on disk by change id, and mean something."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tools.answers import CandidateChange
from tools.change_embeddings import ChangeEmbeddings

NOW = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def minilm() -> Callable[[list[str]], np.ndarray]:
    """The packaged MiniLM, loaded once for the session (about five seconds)."""
    from knowledge.embeddings import embed

    embed(["load"])
    return embed


def _change(change_id: str, title: str, *paths: str) -> CandidateChange:
    return CandidateChange(change_id, title, NOW, paths=paths)


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
