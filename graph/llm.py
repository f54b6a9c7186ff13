"""LLM clients built from settings: one place that knows ``CULPRIT_LLM_*``.

Everything LLM-backed is optional. ``CULPRIT_LLM_BASE_URL`` and
``CULPRIT_LLM_MODEL`` switch it on; without them the judge is the local one and
nothing is contacted. The server is any OpenAI-compatible endpoint, in practice
vLLM (``.../v1``).
"""

from __future__ import annotations

from typing import Any

from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from knowledge.config import Settings
from tools.rca.judges.protocol import Judge
from tools.rca.judges.llm import LLMJudge, require_llm


def make_chat_model(settings: Settings, **options: Any) -> ChatOpenAI:
    """The agent's chat model; tool calling needs vLLM's ``--enable-auto-tool-choice``."""
    base_url, model = require_llm(settings)
    return ChatOpenAI(
        base_url=base_url,
        api_key=SecretStr(settings.llm_api_key),
        model=model,
        timeout=settings.llm_timeout_s,
        max_retries=0,
        **({"temperature": 0.0} | options),
    )


def make_judge(settings: Settings, fallback: Judge) -> Judge:
    """The LLM judge when configured (falling back per batch), else ``fallback`` itself."""
    return LLMJudge.from_settings(settings, fallback) if settings.llm_configured else fallback
