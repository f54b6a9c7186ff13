"""The agent's chat model and the judge, from settings.

Everything LLM-backed is optional. ``CULPRIT_LLM_BASE_URL`` and
``CULPRIT_LLM_MODEL`` switch it on; without them the judge is the local one and
nothing is contacted. The server is any OpenAI-compatible endpoint, in practice
vLLM (``.../v1``); :mod:`tools.llm.client` holds its connection values and the
one timeout and retry policy, which the chat model follows too.
"""

from __future__ import annotations

from typing import Any

from langchain_openai import ChatOpenAI

from knowledge.config import Settings
from tools.llm.client import MAX_RETRIES, LLMEndpoint
from tools.rca.judges.llm import LLMJudge
from tools.rca.judges.protocol import Judge


def make_chat_model(settings: Settings, **options: Any) -> ChatOpenAI:
    """The agent's chat model; tool calling needs vLLM's ``--enable-auto-tool-choice``."""
    endpoint = LLMEndpoint.from_settings(settings)
    return ChatOpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key,
        model=endpoint.model,
        timeout=endpoint.timeout,
        max_retries=MAX_RETRIES,
        http_client=endpoint.http_client(),  # answers bounded in time and size, as every LLM call's
        **({"temperature": 0.0} | options),
    )


def make_judge(settings: Settings, fallback: Judge) -> Judge:
    """The LLM judge when configured (falling back per batch), else ``fallback`` itself."""
    return LLMJudge.from_settings(settings, fallback) if settings.llm_configured else fallback
