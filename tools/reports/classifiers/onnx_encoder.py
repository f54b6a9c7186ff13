"""MiniLM through ONNX Runtime: the float32 path for CPUs that cannot multiply bfloat16 natively.

On such CPUs (AVX2-only AMD EPYC, for one) torch runs MiniLM in float32
well below the 200 reports/s that intake aims for on two cores; ONNX
Runtime runs the same float32 arithmetic faster (figures in docs/reports.md).
The transformer, adapted layers included, is exported in memory when the
classifier loads: no ONNX file ships or is written, so a classifier file
stays data (safetensors) and a fine-tuned encoder needs no second format.

Tokenizing, mean pooling and normalising repeat what the sentence-transformers
pipeline does (its Pooling module in ``mean`` mode, then Normalize), so the
vectors equal torch's to about 1e-6 and a head fitted on one path reads the
other's. Reports run in length-sorted batches of eight: little padding, and a
report's vector does not depend on its neighbours.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import structlog

log = structlog.get_logger(__name__)

BATCH = 8
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PATH = "onnxruntime"


class OnnxEncoder:
    """Unit-length MiniLM vectors from an ONNX Runtime session, in the caller's order."""

    path = PATH

    def __init__(self, session: Any, tokenizer: Any, max_tokens: int) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.width = int(session.get_outputs()[0].shape[-1])

    def encode(self, texts: list[str]) -> np.ndarray:
        """One row per text; batches hold texts of similar length (longest first, as sentence-transformers
        sorts) and the rows are put back in the order the texts came."""
        order = np.argsort([-len(text) for text in texts], kind="stable")
        vectors = np.empty((len(texts), self.width), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            rows = order[start : start + BATCH]
            vectors[rows] = self._embed([texts[i] for i in rows])
        return vectors

    def _embed(self, texts: list[str]) -> np.ndarray:
        tokens = self.tokenizer(
            texts, padding=True, truncation="longest_first", max_length=self.max_tokens, return_tensors="np"
        )
        hidden = self.session.run(None, {name: tokens[name].astype(np.int64) for name in INPUTS})[0]
        return mean_pooled_unit(hidden, tokens["attention_mask"])


def mean_pooled_unit(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' ``Pooling`` (mean over real tokens, count clamped at 1e-9)
    followed by ``Normalize`` (L2, norm clamped at 1e-12)."""
    weights = attention_mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def onnx_encoder(model: Any, threads: int) -> OnnxEncoder | None:
    """``model`` (a float32 MiniLM SentenceTransformer) exported to ONNX Runtime with ``threads`` intra-op
    threads; None, with the reason logged, when onnxruntime is missing or the export or the session fails,
    so the caller keeps torch."""
    try:
        import onnxruntime
    except ImportError as error:
        log.warning("onnxruntime is not importable; MiniLM stays in torch float32", error=str(error))
        return None
    try:
        session = _session(onnxruntime, export_transformer(model), threads)
    except Exception as error:  # the exporter and onnxruntime raise many kinds; any of them means torch
        log.warning("exporting MiniLM to ONNX Runtime failed; it stays in torch float32", error=repr(error))
        return None
    return OnnxEncoder(session, model.tokenizer, model.max_seq_length)


def export_transformer(model: Any) -> bytes:
    """The SentenceTransformer's transformer as an ONNX graph (token embeddings out), batch and sequence
    length left free. The TorchScript exporter (``dynamo=False``) needs only the ``onnx`` package; the
    torch.export one needs onnxscript too."""
    import torch

    bert = _token_embeddings(model[0].auto_model)
    # Texts of two lengths, so the traced graph applies the padding mask rather than a shortcut for none.
    example = model.tokenizer(
        ["a report", "a longer report, padded beside the first"], padding=True, return_tensors="pt"
    )
    graph = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation notes about the legacy exporter
        torch.onnx.export(
            bert, tuple(example[name] for name in INPUTS), graph,
            input_names=list(INPUTS), output_names=["token_embeddings"],
            dynamic_axes={name: {0: "batch", 1: "sequence"} for name in (*INPUTS, "token_embeddings")},
            opset_version=17, dynamo=False,
        )
    return graph.getvalue()


def _session(onnxruntime: Any, graph: bytes, threads: int) -> Any:
    """A CPU session whose idle threads sleep: spinning ones take a core from other work on a busy
    2-core machine (OpenMP's did, making MiniLM three times slower; see docs/wiki.md)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def _token_embeddings(bert: Any) -> Any:
    """``bert`` as a module taking the three token tensors by position and returning only the last hidden
    state: BertModel's own positional order has other arguments between them, and it returns a pooler output
    sentence-transformers does not use. Defined here because torch is imported only when needed."""
    import torch

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            output = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return output.last_hidden_state

    return TokenEmbeddings().eval()
