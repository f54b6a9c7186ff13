"""MiniLM under ONNX Runtime gives torch float32's vectors, in the caller's order, and falls back to torch."""

import copy
import sys

import numpy as np
import pytest
import torch
from structlog.testing import capture_logs

from knowledge.embeddings import get_embedder
from tools.reports.classifiers import embedded
from tools.reports.classifiers.embedded import MAX_TOKENS, EmbeddedClassifier, TorchEncoder, for_inference
from tools.reports.classifiers.finetune import adapted_encoder
from tools.reports.classifiers.onnx_encoder import BATCH, OnnxEncoder, onnx_encoder
from tools.reports.redaction import redact

EDGES = ["", "x", "the app freezes when I rotate the phone " * 30]  # the last runs past the 128 tokens read


def _float32(model: object) -> object:
    """A float32 copy reading the tokens the classifier reads."""
    model = copy.deepcopy(model)
    model.max_seq_length = MAX_TOKENS
    return model


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def texts(labeled_reports) -> list[str]:
    _, test = labeled_reports
    return [redact(r["text"]) for r in test[:30]] + EDGES


def test_onnx_vectors_equal_torch_float32_ones_for_the_packaged_and_a_fine_tuned_encoder(texts: list[str]) -> None:
    packaged = _float32(get_embedder())
    bert = packaged[0].auto_model
    rng = np.random.default_rng(0)
    tuned = {
        name: (p.detach().numpy() + rng.normal(0, 0.05, p.shape)).astype(np.float32)
        for name, p in bert.named_parameters() if name.startswith("encoder.layer.5.")
    }
    adapted = _float32(adapted_encoder(tuned))

    vectors = {}
    for name, model in {"packaged": packaged, "adapted": adapted}.items():
        encoder = onnx_encoder(model, threads=1)
        assert isinstance(encoder, OnnxEncoder)
        vectors[name] = encoder.encode(texts)
        expected = TorchEncoder(model, "torch-float32").encode(texts)
        assert vectors[name].shape == expected.shape and vectors[name].dtype == np.float32
        assert _cosines(vectors[name], expected).min() > 1 - 1e-4, name
        assert np.allclose(np.linalg.norm(vectors[name], axis=1), 1.0, atol=1e-5)
    assert _cosines(vectors["packaged"], vectors["adapted"]).min() < 0.99, "the export carries the tuned layers"


def test_each_row_is_its_own_texts_vector_although_batches_are_sorted_by_length(texts: list[str]) -> None:
    encoder = onnx_encoder(_float32(get_embedder()), threads=1)
    shuffled = [texts[i] for i in np.random.default_rng(1).permutation(len(texts))]
    lengths = [len(t) for t in shuffled]
    assert len(shuffled) > 2 * BATCH and lengths != sorted(lengths, reverse=True)

    together = encoder.encode(shuffled)
    alone = np.concatenate([encoder.encode([text]) for text in shuffled])

    assert np.abs(together - alone).max() < 1e-5
    assert encoder.encode([]).shape == (0, together.shape[1])


def test_a_cpu_without_native_bfloat16_embeds_through_onnx_runtime(
    classifier: EmbeddedClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert classifier.inference_path == ("torch-bfloat16" if embedded.native_bfloat16() else "onnxruntime")
    monkeypatch.setattr(embedded, "native_bfloat16", lambda: False)
    assert for_inference(copy.deepcopy(get_embedder())).path == "onnxruntime"
    monkeypatch.setattr(embedded, "native_bfloat16", lambda: True)
    native = for_inference(copy.deepcopy(get_embedder()))
    assert native.path == "torch-bfloat16" and native.model.dtype == torch.bfloat16


def test_without_onnxruntime_or_when_the_export_fails_minilm_stays_in_torch_float32_and_says_why(
    texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "native_bfloat16", lambda: False)
    expected = TorchEncoder(_float32(get_embedder()), "torch-float32").encode(texts)

    with monkeypatch.context() as patch, capture_logs() as logs:
        patch.setitem(sys.modules, "onnxruntime", None)  # what an environment without it raises on import
        missing = for_inference(copy.deepcopy(get_embedder()))
    assert missing.path == "torch-float32" and missing.model.dtype == torch.float32
    assert [log["event"] for log in logs] == ["onnxruntime is not importable; MiniLM stays in torch float32"]

    def removed_exporter(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the TorchScript-based exporter was removed")

    with monkeypatch.context() as patch, capture_logs() as logs:
        patch.setattr(torch.onnx, "export", removed_exporter)
        failed = for_inference(copy.deepcopy(get_embedder()))
    assert failed.path == "torch-float32"
    assert logs[0]["log_level"] == "warning" and "exporter was removed" in logs[0]["error"]
    assert np.abs(failed.encode(texts) - expected).max() < 1e-6
