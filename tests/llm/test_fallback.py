"""A sick LLM never fails an RCA: each bad answer hands the batch to the local judge, and says so."""

from __future__ import annotations

import json
import socket

import pytest
from structlog.testing import capture_logs

from graph.llm import make_chat_model, make_judge
from knowledge.config import Settings
from tools.llm.client import LLMEndpoint
from tools.rca.answers import IncidentQuery
from tools.rca.election import elect
from tools.rca.judges.llm import LLMJudge
from tools.rca.judges.local import LocalJudge

from tests.llm.conftest import make_changes
from tests.llm.servers import EndlessLLM, MisbehavingLLM, completion, json_reply, raw_reply, slow_reply

BATCH = make_changes(3)  # letters A, B, C


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (raw_reply(b'{"choices": [{"message": '), "malformed answer"),
        (raw_reply(b"<html>upstream error</html>"), "malformed answer"),
        (json_reply({"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}),
         "malformed answer: no choices in the answer"),
        (json_reply(completion("Z", [("Z", -0.1), ("Y", -2.0)])), "malformed answer: answer 'Z' is not a letter"),
        (json_reply(completion("A", None)), "malformed answer: no logprobs in the answer"),
        (json_reply(completion("A", [("the", -0.1), ("of", -1.0)])),
         "malformed answer: no candidate letter among the answer's logprobs"),
        (json_reply(completion("A", [("A", 0.5), ("B", -2.0)])),
         "malformed answer: logprob 0.5 of token 'A' is above 0, a probability over 1"),
        (json_reply(completion("A", [("A", -0.1), ("the", 1e300)])),
         "malformed answer: logprob 1e+300 of token 'the' is above 0, a probability over 1"),
        (json_reply({"error": {"message": "engine dead"}}, status=500), "HTTP 500"),
    ],
    ids=["truncated-json", "html", "empty-choices", "letter-not-in-batch", "no-logprobs", "no-letter-logprobs",
         "positive-logprob", "huge-logprob", "http-500"],
)
def test_nonsense_from_the_server_hands_the_batch_to_the_local_judge(
    incident: IncidentQuery, local_judge: LocalJudge, reply, reason: str
) -> None:
    server = MisbehavingLLM(reply)
    try:
        judge = LLMJudge(LLMEndpoint(server.base_url, "sick-llm", timeout_s=5), fallback=local_judge)
        with capture_logs() as logs:
            judged = judge.rank(incident, BATCH, keep=2)
    finally:
        server.close()

    expected = local_judge.rank(incident, BATCH, keep=2)
    assert [choice.change_id for choice in judged] == [choice.change_id for choice in expected]
    assert [choice.score for choice in judged] == [choice.score for choice in expected]
    assert all(choice.judge.startswith(f"heuristic (LLM fallback: {reason}") for choice in judged)
    assert len(server.requests) == 1, "a sick server is asked once, not retried"
    logged = [entry["reason"] for entry in logs if entry["event"] == "llm_judge_fallback"]
    assert [f"heuristic (LLM fallback: {logged_reason})" for logged_reason in logged] == [judged[0].judge]


def test_a_server_that_answers_too_late_is_abandoned_at_the_timeout(
    incident: IncidentQuery, local_judge: LocalJudge
) -> None:
    server = MisbehavingLLM(slow_reply(3.0, json_reply(completion("A", [("A", -0.1)]))))
    try:
        judge = LLMJudge(LLMEndpoint(server.base_url, "slow-llm", timeout_s=0.5), fallback=local_judge)
        judged = judge.rank(incident, BATCH, keep=2)
    finally:
        server.close()

    # The server's late answer is valid: a judge that waited for it would not have fallen back.
    assert {choice.judge for choice in judged} == {"heuristic (LLM fallback: timeout)"}
    assert len(judged) == 2


def test_a_dead_server_falls_back_for_every_batch_of_an_election(
    incident: IncidentQuery, local_judge: LocalJudge
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    judge = LLMJudge(LLMEndpoint(f"http://127.0.0.1:{closed_port}/v1", "gone", timeout_s=2), fallback=local_judge)

    result = elect(incident, make_changes(45), judge, batch_size=15)

    assert len(result.winners) == 5
    assert result.judges_used == ["heuristic (LLM fallback: server unreachable)"]
    assert result.judge_calls == 4  # three batches, then the final round


def test_settings_without_an_llm_keep_the_local_judge(local_judge: LocalJudge) -> None:
    assert make_judge(Settings(), local_judge) is local_judge


def test_settings_with_an_llm_make_an_llm_judge_that_falls_back_to_the_local_one(local_judge: LocalJudge) -> None:
    settings = Settings(llm_base_url="http://127.0.0.1:9/v1", llm_model="ranker", llm_timeout_s=3.5)

    judge = make_judge(settings, local_judge)

    assert isinstance(judge, LLMJudge)
    assert (judge.name, judge.endpoint.timeout_s, judge.fallback) == ("llm:ranker", 3.5, local_judge)
    assert str(judge.client.base_url) == "http://127.0.0.1:9/v1/"


def _judges_of_a_batch_sent_to(
    server: EndlessLLM, timeout_s: float, incident: IncidentQuery, local_judge: LocalJudge
) -> set[str]:
    """Who ranked the batch the LLM judge sent to ``server``, once the judge hung up on it."""
    try:
        judge = LLMJudge(LLMEndpoint(server.base_url, "endless-llm", timeout_s=timeout_s), fallback=local_judge)
        judged = judge.rank(incident, BATCH, keep=2)
        assert server.hung_up.wait(30), "the judge stopped reading"
    finally:
        server.close()
    assert server.requests == 1
    return {choice.judge for choice in judged}


def test_an_answer_without_end_is_cut_off_at_its_size_limit_and_the_batch_falls_back(
    incident: IncidentQuery, local_judge: LocalJudge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tools.llm.client.MAX_ANSWER_BYTES", 64 * 1024)  # the bound under test, made small
    server = EndlessLLM(b"A" * 16 * 1024, interval=0.001)  # fast enough that no read ever times out

    assert _judges_of_a_batch_sent_to(server, 60, incident, local_judge) == {
        "heuristic (LLM fallback: answer too large: the LLM's answer is over 65,536 bytes (MAX_ANSWER_BYTES))"
    }


def test_an_answer_trickled_past_the_timeout_is_abandoned_though_each_byte_came_in_time(
    incident: IncidentQuery, local_judge: LocalJudge
) -> None:
    server = EndlessLLM(b"A", interval=0.02)  # each byte well within the 0.5 s read timeout

    assert _judges_of_a_batch_sent_to(server, 0.5, incident, local_judge) == {"heuristic (LLM fallback: timeout)"}


def test_a_compressed_answer_is_refused_before_it_is_unpacked(
    incident: IncidentQuery, local_judge: LocalJudge
) -> None:
    server = EndlessLLM(b"\x1f\x8b", interval=0.01, compressed=True)

    assert _judges_of_a_batch_sent_to(server, 60, incident, local_judge) == {
        "heuristic (LLM fallback: answer too large: the LLM's answer came compressed, though asked not to; its size is unknown)"
    }


def test_the_agents_chat_model_gives_up_on_a_trickled_answer_at_the_timeout() -> None:
    import openai

    server = EndlessLLM(b" ", interval=0.02)
    try:
        settings = Settings(llm_base_url=server.base_url, llm_model="trickling-llm", llm_timeout_s=0.5)
        with pytest.raises(openai.APITimeoutError):
            make_chat_model(settings).invoke("what changed in payments?")
    finally:
        server.close()


def test_a_server_error_quoting_the_incident_is_logged_by_its_type_and_reason_alone(
    incident: IncidentQuery, local_judge: LocalJudge
) -> None:
    """A server behind a URL with credentials answers 500 quoting the prompt it was sent, the incident's
    text in it: the log says which error and why the batch fell back, and holds neither."""
    def quoting(request: dict) -> tuple[int, bytes]:
        prompt = " ".join(str(message["content"]) for message in request["messages"])
        return 500, json.dumps({"error": {"message": f"cannot judge {prompt[prompt.index(incident.text):]}"}}).encode()

    server = MisbehavingLLM(quoting)
    try:
        url = server.base_url.replace("http://", "http://judge:llm-s3cret@")
        judge = LLMJudge(LLMEndpoint(url, "sick-llm", timeout_s=5), fallback=local_judge)
        with capture_logs() as logs:
            judge.rank(incident, BATCH, keep=2)
    finally:
        server.close()

    [logged] = [entry for entry in logs if entry["event"] == "llm_judge_fallback"]
    assert "cannot judge" not in repr(logged) and "llm-s3cret" not in repr(logged)
    assert (logged["error_type"], logged["reason"]) == ("InternalServerError", "HTTP 500")
