"""One way to reach the configured LLM server, with one timeout and retry policy.

Retry policy: the SDK never retries (:data:`MAX_RETRIES` is 0), and a request
waits at most the configured timeout (connecting at most
:data:`CONNECT_TIMEOUT_S` of it). Every caller already has its own recovery,
which a retry would only delay: the judge hands the batch to the local judge,
an unclassified report stays pending for the next worker pass, the cluster
namer keeps the keyword name and the agent answers with a plain RCA. So a
request costs at most one timeout, whatever the server does.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import openai
from pydantic import SecretStr

from knowledge.config import Settings
from knowledge.errors import InputError

MAX_RETRIES = 0
CONNECT_TIMEOUT_S = 5.0


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
        """The whole request within ``timeout_s``; a server that does not accept gives up sooner."""
        return httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, CONNECT_TIMEOUT_S))


def openai_client(endpoint: LLMEndpoint) -> openai.OpenAI:
    """A thread-safe client for ``endpoint`` under the module's retry policy."""
    return openai.OpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key.get_secret_value(),
        timeout=endpoint.timeout,
        max_retries=MAX_RETRIES,
    )
