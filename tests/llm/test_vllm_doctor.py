"""`culprit doctor`'s LLM line against a real vLLM server started as docs/llm.md says (tools on, --max-logprobs 20)."""

from __future__ import annotations

import pytest

from bot.doctor import DoctorOptions
from bot.doctor.services import check_llm
from knowledge.config import Settings
from tests.vllm_server import VllmServer

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1800)]


def test_a_correctly_started_vllm_passes_and_a_wrong_name_is_named(vllm_server: VllmServer) -> None:
    served = Settings(llm_base_url=vllm_server.base_url, llm_model=vllm_server.model, llm_timeout_s=60)
    [line] = check_llm(served, DoctorOptions())
    assert line.status == "pass", line

    [wrong] = check_llm(served.model_copy(update={"llm_model": "culprit-judge-lora"}), DoctorOptions())
    assert wrong.status == "fail" and vllm_server.model in wrong.detail
