"""One way to reach the configured LLM server, with one timeout and retry policy.

Retry policy: the SDK never retries (:data:`MAX_RETRIES` is 0), and a request
waits at most the configured timeout for its answer's whole body (connecting
at most :data:`CONNECT_TIMEOUT_S` of it; a read the deadline passes in may
overrun it by one read timeout), and reads at most :data:`MAX_ANSWER_BYTES` of
it: httpx's timeouts are per socket read, so a server sending a byte a second,
or an answer without end, would otherwise hold the caller for ever and fill
memory. The headers are bounded per read only: httpx2 offers no bound on
their time as a whole (docs/llm.md, "A known limit"). Every caller already has its own recovery,
which a retry would only delay: the judge hands the batch to the local judge,
an unclassified report stays pending for the next worker pass, the cluster
namer keeps the keyword name and the agent answers with a plain RCA. So a
request costs at most one timeout, whatever the server does once its headers are in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import openai
from pydantic import SecretStr

from knowledge.bounded_answers import IDENTITY_ENCODING, AnswerBounds, bound_answer
from knowledge.config import Settings
from knowledge.errors import InputError

MAX_RETRIES = 0
CONNECT_TIMEOUT_S = 5.0
MAX_ANSWER_BYTES = 4 * 1024 * 1024
"""Most bytes one LLM answer may carry: a judge's answer is a few KB, an agent's turn with tool calls tens."""


class LLMAnswerTooLarge(openai.APIConnectionError):
    """An LLM answer went past ``MAX_ANSWER_BYTES`` or came compressed; nothing of it was parsed. An
    ``openai.APIError``, so every caller's recovery from a failed server covers it."""


@dataclass(frozen=True)
class LLMEndpoint:
    """Where the LLM is served, which model to ask, and how long to wait for an answer."""

    base_url: str
    model: str
    # A SecretStr, so printing or logging an endpoint hides it; immutable, so one shared default is safe.
    api_key: SecretStr = SecretStr("EMPTY")  # noqa: RUF009
    timeout_s: float = 20.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMEndpoint:
        """The configured endpoint, or an error that says which variables to set."""
        if not (settings.llm_base_url and settings.llm_model):
            raise InputError(
                "no LLM is configured: set CULPRIT_LLM_BASE_URL (e.g. http://vllm:8000/v1) "
                "and CULPRIT_LLM_MODEL to the served model name"
            )
        return cls(settings.llm_base_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout_s)

    @property
    def timeout(self) -> httpx.Timeout:
        """Each read within ``timeout_s``; a server that does not accept gives up sooner."""
        return httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, CONNECT_TIMEOUT_S))

    def http_client(self) -> httpx2.Client:
        """The HTTP client every LLM call goes through (the SDK's defaults, answers bounded)."""
        return _BoundedAnswers(self.timeout_s, timeout=httpx2.Timeout(**self.timeout.as_dict()))


class _BoundedAnswers(openai.DefaultHttpxClient):
    """Reads every answer within ``answer_timeout_s`` and ``MAX_ANSWER_BYTES`` (:func:`bound_answer`), also
    answers the SDK reads whole itself, and asks for them uncompressed."""

    def __init__(self, answer_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(headers=IDENTITY_ENCODING, **kwargs)
        self.answer_timeout_s = answer_timeout_s

    def send(self, request: httpx2.Request, *, stream: bool = False, **kwargs: Any) -> httpx2.Response:  # type: ignore[override]
        deadline = time.monotonic() + self.answer_timeout_s
        bounds = AnswerBounds(
            max_bytes=MAX_ANSWER_BYTES,
            limit_name="MAX_ANSWER_BYTES",
            too_slow=lambda: httpx2.ReadTimeout("the LLM's answer did not arrive within its timeout", request=request),
            too_large=lambda why: LLMAnswerTooLarge(message=f"the LLM's answer {why}", request=request),
        )
        return bound_answer(super().send(request, stream=True, **kwargs), bounds, deadline, read=not stream)


def openai_client(endpoint: LLMEndpoint) -> openai.OpenAI:
    """A thread-safe client for ``endpoint`` under the module's retry policy."""
    return openai.OpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key.get_secret_value(),
        timeout=endpoint.timeout,
        max_retries=MAX_RETRIES,
        http_client=endpoint.http_client(),
    )
