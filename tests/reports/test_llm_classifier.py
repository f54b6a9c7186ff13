import json
import math
import socket
from collections.abc import Iterator

import pytest

from knowledge.errors import CulpritError
from tests.llm.servers import MisbehavingLLM, completion, raw_reply
from tests.loopback import JsonHandler, LoopbackServer
from tools.llm.client import LLMEndpoint
from tools.reports.classifiers import OTHER, with_other
from tools.reports.classifiers.llm import CategoryDefinition, LLMClassifier, answer_choice, build_messages, confidence_from_logprobs

CATEGORIES = [
    CategoryDefinition("login", "Users cannot sign in.", ["can't log in", "password reset never arrives"]),
    CategoryDefinition("crash", "The app closes or freezes.", ["app crashes on start"]),
]


def test_prompt_holds_definitions_then_few_shot_turns_then_the_report() -> None:
    messages = build_messages(CATEGORIES, "the app closes when I upload")
    assert messages[0]["role"] == "system"
    assert "- login: Users cannot sign in." in messages[0]["content"] and "- crash: The app closes" in messages[0]["content"]
    turns = [(m["role"], m["content"]) for m in messages[1:]]
    assert turns == [
        ("user", "can't log in"), ("assistant", "login"),
        ("user", "app crashes on start"), ("assistant", "crash"),
        ("user", "password reset never arrives"), ("assistant", "login"),
        ("user", "the app closes when I upload"),
    ]
    assert answer_choice(CATEGORIES) == {"structured_outputs": {"choice": ["login", "crash"]}}


class _FakeVllm(JsonHandler):
    requests: list[dict] = []
    answers: dict[str, tuple[str, list[float]]] = {}

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        answer, logprobs = self.answers[body["messages"][-1]["content"]]
        payload = {
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{
                "index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": answer},
                "logprobs": {"content": [{"token": f"t{i}", "logprob": lp, "bytes": None, "top_logprobs": []} for i, lp in enumerate(logprobs)]},
            }],
        }
        self.send_json(200, payload)


@pytest.fixture
def fake_vllm() -> Iterator[str]:
    server = LoopbackServer(_FakeVllm)
    yield f"{server.url}/v1"
    server.close()


def test_answers_and_logprobs_become_categories_and_confidences(fake_vllm: str) -> None:
    _FakeVllm.requests.clear()
    _FakeVllm.answers = {
        "cannot sign in": ("login", [-0.05, -0.05]),
        "it froze?": ("crash", [-1.2]),
        "hello": ("weather", [-0.01]),
    }
    classifier = LLMClassifier(LLMEndpoint(fake_vllm, "tiny"), CATEGORIES, concurrency=2)
    predictions = classifier.classify(["cannot sign in", "it froze?", "hello"])
    assert predictions[0].category == "login" and predictions[0].confidence == pytest.approx(math.exp(-0.1))
    assert predictions[1].category == "crash" and predictions[1].confidence == pytest.approx(math.exp(-1.2))
    assert predictions[2].category == OTHER and predictions[2].confidence == 0.0, "an answer outside the choices is never trusted"
    assert [p.category for p in with_other(predictions, 0.4)] == ["login", OTHER, OTHER]
    sent = _FakeVllm.requests[0]
    assert sent["structured_outputs"] == {"choice": ["login", "crash"]} and sent["logprobs"] is True and sent["temperature"] == 0.0


def test_a_server_down_is_named_without_the_password_in_its_url() -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    classifier = LLMClassifier(LLMEndpoint(f"http://ops:hunter2@127.0.0.1:{port}/v1", "tiny", timeout_s=2), CATEGORIES)
    with pytest.raises(CulpritError) as refused:
        classifier.classify(["cannot sign in"])
    assert f"the LLM classifier at http://ops:***@127.0.0.1:{port}/v1" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_missing_logprobs_mean_no_confidence() -> None:
    assert confidence_from_logprobs(None) == 0.0


_LOGIN = json.dumps(completion("login", [("login", -0.1)]))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (json.dumps({**json.loads(_LOGIN), "choices": []}), (OTHER, 0.0)),
        (json.dumps({k: v for k, v in json.loads(_LOGIN).items() if k != "choices"}), (OTHER, 0.0)),
        (_LOGIN.replace('"message": {"role": "assistant", "content": "login"}', '"message": null'), (OTHER, 0.0)),
        (_LOGIN.replace('"content": "login"', '"content": ["login"]'), (OTHER, 0.0)),
        (_LOGIN.replace("-0.1", "NaN"), ("login", 0.0)),
        (_LOGIN.replace("-0.1", "1e308"), ("login", 1.0)),
    ],
    ids=["empty-choices", "no-choices", "null-message", "content-not-text", "nan-logprob", "huge-logprob"],
)
def test_a_malformed_answer_is_never_trusted_and_never_fails_the_batch(body: str, expected: tuple[str, float]) -> None:
    server = MisbehavingLLM(raw_reply(body.encode()))
    try:
        classifier = LLMClassifier(LLMEndpoint(server.base_url, "sick-llm", timeout_s=5), CATEGORIES, concurrency=1)
        predictions = classifier.classify(["cannot sign in"])
    finally:
        server.close()
    assert [(p.category, p.confidence) for p in predictions] == [expected]


@pytest.mark.vllm
def test_classifier_speaks_the_protocol_of_a_real_vllm(vllm_server) -> None:
    """The tiny model answers nonsense; the constrained answer must still be one of the names."""
    classifier = LLMClassifier(LLMEndpoint(vllm_server.base_url, vllm_server.model), CATEGORIES, concurrency=2)
    predictions = classifier.classify(["cannot sign in", "the app closes"])
    assert all(p.category in {"login", "crash"} for p in predictions)
    assert all(0.0 < p.confidence <= 1.0 for p in predictions)
