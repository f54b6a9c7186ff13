"""The LLM judge against a real CPU vLLM server with a tiny random Llama.

The model's picks are nonsense; what is checked is the protocol: vLLM accepts
the request, the answer is one of the batch's letters, the logprobs give a
distribution over the whole batch, batches run concurrently, and an LLM that
goes away mid-run leaves the RCA to the local judge.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from graph.llm import make_chat_model, make_judge
from knowledge.config import Settings
from tools.llm.client import LLMEndpoint, openai_client
from tools.rca.answers import IncidentQuery
from tools.rca.election import elect
from tools.rca.judges.prompt import candidate_labels, judge_messages
from tools.rca.judges.llm import LLMJudge
from tools.rca.judges.local import LocalJudge

from tests.llm.conftest import make_changes
from tests.llm.servers import StoppableRelay
from tests.vllm_server import VllmServer

# The first test also builds the venv (minutes, more on a slow network) and starts the server.
pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1800)]


@pytest.fixture
def judge(vllm_server: VllmServer, local_judge: LocalJudge) -> LLMJudge:
    settings = Settings(llm_base_url=vllm_server.base_url, llm_model=vllm_server.model, llm_timeout_s=60)
    made = make_judge(settings, local_judge)
    assert isinstance(made, LLMJudge)
    return made


@pytest.mark.parametrize("size", [2, 7, 20])
def test_vllm_accepts_the_request_and_answers_only_with_letters_of_the_batch(
    vllm_server: VllmServer, incident: IncidentQuery, size: int
) -> None:
    labels = candidate_labels(size)
    client = openai_client(LLMEndpoint(vllm_server.base_url, vllm_server.model, timeout_s=60))

    response = client.chat.completions.create(
        model=vllm_server.model,
        messages=judge_messages(incident, [candidate.change for candidate in make_changes(size)]),  # type: ignore[arg-type]
        max_tokens=4,
        temperature=1.0,  # sampling, so an unconstrained model would wander off the letters
        seed=size,
        logprobs=True,
        top_logprobs=size,
        extra_body={"structured_outputs": {"choice": labels}},
    )

    answer = response.choices[0].message.content
    assert answer in labels
    first = response.choices[0].logprobs.content[0]  # type: ignore[union-attr]
    allowed = [entry.token for entry in first.top_logprobs if entry.logprob > -1000]
    assert set(allowed) <= set(labels), "the constraint masks every other token"
    assert math.fsum(math.exp(entry.logprob) for entry in first.top_logprobs) == pytest.approx(1.0, abs=1e-3)


def test_the_judge_keeps_five_changes_of_the_batch_scored_by_one_distribution(
    judge: LLMJudge, incident: IncidentQuery
) -> None:
    batch = make_changes(20)

    distribution = judge.letter_probabilities(incident, batch)
    judged = judge.rank(incident, batch, keep=5)

    assert set(distribution) == set(candidate_labels(20))
    assert all(probability >= 0 for probability in distribution.values())
    assert math.fsum(distribution.values()) == pytest.approx(1.0)
    assert len(judged) == 5
    assert len({choice.change_id for choice in judged}) == 5
    assert {choice.change_id for choice in judged} <= {change.change_id for change in batch}
    assert {choice.judge for choice in judged} == {"llm:tiny-llama"}
    scores = [choice.score for choice in judged]
    assert scores == sorted(scores, reverse=True)
    assert scores == pytest.approx(sorted(distribution.values(), reverse=True)[:5], abs=1e-6)


def test_a_batch_smaller_than_keep_returns_every_change(judge: LLMJudge, incident: IncidentQuery) -> None:
    batch = make_changes(2)

    judged = judge.rank(incident, batch, keep=5)

    assert sorted(choice.change_id for choice in judged) == sorted(change.change_id for change in batch)
    assert math.fsum(choice.score for choice in judged) == pytest.approx(1.0)


def test_batches_of_an_election_are_judged_concurrently_by_the_llm(judge: LLMJudge, incident: IncidentQuery) -> None:
    candidates = make_changes(80)

    result = elect(incident, candidates, judge, batch_size=20, max_workers=4)

    assert result.judges_used == ["llm:tiny-llama"]
    assert (result.rounds, result.judge_calls) == (2, 5)
    assert len({choice.change_id for choice in result.winners}) == 5


def test_one_judge_serves_many_threads_at_once(judge: LLMJudge, incident: IncidentQuery) -> None:
    batches = [make_changes(12)[offset:] for offset in range(8)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda batch: judge.rank(incident, batch, 3), batches))

    for batch, judged in zip(batches, results, strict=True):
        assert {choice.judge for choice in judged} == {"llm:tiny-llama"}
        assert {choice.change_id for choice in judged} <= {change.change_id for change in batch}


def test_an_llm_stopped_between_calls_leaves_the_next_batches_to_the_local_judge(
    vllm_server: VllmServer, incident: IncidentQuery, local_judge: LocalJudge
) -> None:
    relay = StoppableRelay(vllm_server.base_url)
    judge = LLMJudge(LLMEndpoint(relay.base_url, vllm_server.model, timeout_s=30), fallback=local_judge)
    batch = make_changes(10)

    before = judge.rank(incident, batch, keep=5)
    relay.close()
    after = judge.rank(incident, batch, keep=5)

    assert {choice.judge for choice in before} == {"llm:tiny-llama"}
    assert {choice.judge for choice in after} == {"heuristic (LLM fallback: server unreachable)"}
    assert [choice.change_id for choice in after] == [c.change_id for c in local_judge.rank(incident, batch, 5)]


def test_an_llm_that_dies_mid_election_still_yields_five_suggestions(
    vllm_server: VllmServer, incident: IncidentQuery, local_judge: LocalJudge
) -> None:
    relay = StoppableRelay(vllm_server.base_url, serve_requests=2)
    judge = LLMJudge(LLMEndpoint(relay.base_url, vllm_server.model, timeout_s=30), fallback=local_judge)
    try:
        result = elect(incident, make_changes(80), judge, batch_size=20, max_workers=2)
    finally:
        relay.close()

    assert relay.served == 2
    assert len(result.winners) == 5
    assert "heuristic (LLM fallback: server unreachable)" in result.judges_used
    assert result.judge_calls == 5


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def test_the_agent_chat_model_talks_to_vllm_and_receives_parsed_tool_calls(vllm_server: VllmServer) -> None:
    settings = Settings(llm_base_url=vllm_server.base_url, llm_model=vllm_server.model, llm_timeout_s=60)
    # The random model would never write a tool call by itself: force the exact text with a one-option
    # choice, so what is tested is vLLM's hermes parser and LangChain's reading of tool_calls.
    forced = '<tool_call>{"name": "weather", "arguments": {"city": "Paris"}}</tool_call>'
    chat = make_chat_model(settings, max_tokens=64, extra_body={"structured_outputs": {"choice": [forced]}})

    plain = make_chat_model(settings, max_tokens=5).invoke("Is checkout down?")
    reply = chat.bind_tools([weather]).invoke("What is the weather in Paris?")

    assert isinstance(plain, AIMessage) and isinstance(plain.content, str)
    assert isinstance(reply, AIMessage)
    assert [(call["name"], call["args"]) for call in reply.tool_calls] == [("weather", {"city": "Paris"})]
