"""The offline classifier: packaged MiniLM sentence embeddings and TF-IDF words under one linear head.

MiniLM alone reaches macro-F1 about 0.72 on the app-review data while words
alone reach about 0.90: users name their problem ("crash", "add a dark mode"),
and the embedding adds paraphrase. The head sees both, concatenated. MiniLM
runs in bfloat16 where the CPU multiplies it natively (AVX512-BF16 or AMX:
about twice as fast as int8 there and within 0.003 of float32), else in
float32 under ONNX Runtime (``onnx_encoder``: faster than torch there, the
same vectors), else in torch float32 when onnxruntime is missing or the
export fails. It no longer runs int8: dynamic quantisation scales activations per
batch, so a report's embedding moved by up to 0.07 with the reports batched
beside it and about one report in 40 changed category with its batch.

``culprit reports train`` first adapts MiniLM's top layers to the team's
categories (``finetune``: contrastive pairs, the SetFit method); those layers
travel in the classifier file as safetensors and run in the same precision.
"""

from __future__ import annotations

import copy
import threading
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from knowledge.embeddings import get_embedder, native_bfloat16
from knowledge.errors import InputError
from knowledge.model_files import ModelWriter, read_model_file
from tools.reports.classifiers import RETRAIN, Prediction
from tools.reports.classifiers.finetune import FineTuning, Progress, adapted_encoder, fine_tune_encoder
from tools.reports.classifiers.onnx_encoder import OnnxEncoder, onnx_encoder

MAX_TOKENS = 128
EMBEDDING_WIDTH = 384  # MiniLM's: the head reads these after the words
EXAMPLES_PER_CATEGORY = 200
FILE_KIND = "culprit report classifier"
FILE_FORMAT = 1


_preparing = threading.Lock()


def _inference_embedder() -> Encoder:
    """The packaged MiniLM for classifying, made once even when a burst of batches asks at the same time."""
    with _preparing:
        return _prepare_embedder()


@lru_cache(maxsize=1)
def _prepare_embedder() -> Encoder:
    """A copy of the packaged MiniLM for inference; the float original stays untouched for other callers."""
    return for_inference(copy.deepcopy(get_embedder()))


@dataclass(frozen=True)
class TorchEncoder:
    """A SentenceTransformer run by torch in the precision ``path`` names."""

    model: Any
    path: str

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)


Encoder = TorchEncoder | OnnxEncoder


def for_inference(model: Any) -> Encoder:
    """``model`` (a float32 SentenceTransformer, changed in place) on the fastest path whose embeddings do
    not depend on the batch, reading the first 128 tokens: torch bfloat16 where the CPU multiplies it
    natively, else ONNX Runtime, else torch float32. The encoder's ``path`` says which."""
    import torch

    model.max_seq_length = MAX_TOKENS
    if native_bfloat16():
        return TorchEncoder(model.to(torch.bfloat16), "torch-bfloat16")
    return onnx_encoder(model, torch.get_num_threads()) or TorchEncoder(model, "torch-float32")


def report_embeddings(texts: list[str], encoder: Encoder | None = None) -> np.ndarray:
    """Unit-length MiniLM vectors for reports (first 128 tokens: reports rarely run longer);
    ``encoder`` is an adapted model (see :meth:`EmbeddedClassifier.encoder`), else the packaged one."""
    if not texts:
        return np.zeros((0, EMBEDDING_WIDTH), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vectors = (encoder or _inference_embedder()).encode(texts)
    return np.asarray(vectors, dtype=np.float32)


class EmbeddedClassifier:
    """Logistic regression over [MiniLM embedding, TF-IDF]; trains in seconds, runs offline.

    ``tuned`` holds the top MiniLM layers adapted to the team's categories by
    ``culprit reports train`` (see ``finetune``); without it the packaged
    model embeds the reports, as before fine-tuning existed.
    """

    def __init__(
        self,
        vectorizer: TfidfVectorizer,
        head: LogisticRegression,
        tuned: dict[str, np.ndarray] | None = None,
        examples: Examples | None = None,
    ) -> None:
        self.vectorizer = vectorizer
        self.head = head
        self.tuned = tuned
        self.examples = examples
        self._term_list: list[str] | None = None
        self._encoder: Encoder | None = None
        self._encoder_lock = threading.Lock()

    @property
    def categories(self) -> list[str]:
        return [str(c) for c in self.head.classes_]

    @property
    def encoder(self) -> Encoder:
        """The model that embeds reports for this head: adapted if it was fine-tuned, built once."""
        if self.tuned is None:
            return _inference_embedder()
        with self._encoder_lock:
            if self._encoder is None:
                self._encoder = for_inference(adapted_encoder(self.tuned))
            return self._encoder

    @property
    def inference_path(self) -> str:
        """How this classifier's encoder runs: ``torch-bfloat16``, ``onnxruntime`` or ``torch-float32``."""
        return self.encoder.path

    @classmethod
    def train(
        cls,
        texts: list[str],
        labels: list[str],
        embeddings: np.ndarray | None = None,
        fine_tune: FineTuning | None = None,
        on_progress: Progress | None = None,
    ) -> EmbeddedClassifier:
        """Fit on labeled reports; with ``fine_tune`` adapt MiniLM to them first (minutes, not seconds).

        ``embeddings`` (of the packaged model) skip embedding when they are already computed.
        """
        if len(set(labels)) < 2:
            raise InputError("training needs reports in at least two categories; add labeled reports")
        tuned = None
        if fine_tune is not None:
            tuned = fine_tune_encoder(texts, labels, fine_tune, on_progress)
        fitted = fit_word_features(texts)
        if fitted is None:
            raise InputError("the labeled reports hold no words to learn from (empty, single letters, or redacted away); add reports with text")
        model = cls(fitted[0], _head(), tuned)
        words = fitted[1]
        if embeddings is None or tuned is not None:
            embeddings = model.embed(texts, on_progress)
        model.head.fit(_features(words, embeddings), labels)
        model.examples = Examples.sample(texts, labels, embeddings)
        return model

    def embed(self, texts: list[str], on_progress: Progress | None = None) -> np.ndarray:
        """This classifier's embeddings of ``texts``, in slices so a progress bar can follow."""
        report = on_progress or (lambda _stage, _done, _total: None)
        parts, step = [], 512
        for start in range(0, len(texts), step):
            report("embedding reports", start, len(texts))
            parts.append(report_embeddings(texts[start : start + step], encoder=self.encoder))
        report("embedding reports", len(texts), len(texts))
        return np.concatenate(parts) if parts else report_embeddings([])

    def probabilities(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        vectors = report_embeddings(texts, encoder=self.encoder) if embeddings is None else embeddings
        return self.head.predict_proba(_features(self.vectorizer.transform(texts), vectors))

    def classify(self, texts: list[str], embeddings: np.ndarray | None = None) -> list[Prediction]:
        """Category, confidence and why (nearest labeled examples, heaviest words) for each report."""
        if not texts:
            return []
        vectors = report_embeddings(texts, encoder=self.encoder) if embeddings is None else embeddings
        words = self.vectorizer.transform(texts)
        probabilities = self.head.predict_proba(_features(words, vectors))
        best = probabilities.argmax(axis=1)
        neighbours = self.examples.nearest(vectors) if self.examples else [[] for _ in texts]
        return [
            Prediction(
                self.categories[i], float(probabilities[row, i]),
                {"neighbours": neighbours[row], "words": self._weighty_words(words, row, i)},
            )
            for row, i in enumerate(best)
        ]

    def _weighty_words(self, words: csr_matrix, row: int, category: int, limit: int = 5) -> list[dict[str, Any]]:
        """Row ``row``'s words that pushed hardest toward ``category``: TF-IDF value times the head's weight
        (read straight from the CSR arrays: slicing a row out costs more than the rest)."""
        coef = self.head.coef_
        weights = coef[0] * (1 if category == 1 else -1) if coef.shape[0] == 1 else coef[category]
        start, end = words.indptr[row], words.indptr[row + 1]
        columns = words.indices[start:end]
        values = words.data[start:end] * weights[columns]
        order = np.argsort(-values)[:limit]
        terms = self._terms()
        return [{"term": terms[columns[k]], "weight": round(float(values[k]), 3)} for k in order if values[k] > 0]

    def _terms(self) -> list[str]:
        if self._term_list is None:
            vocabulary = self.vectorizer.vocabulary_
            self._term_list = sorted(vocabulary, key=vocabulary.__getitem__)
        return self._term_list

    def save(self, path: Path) -> None:
        """Data only (see ``knowledge.model_files``): reading it back can never run code.

        The adapted encoder layers go beside the head as safetensors; a file
        without them means the packaged MiniLM, so files from before
        fine-tuning existed still load.
        """
        writer = ModelWriter(FILE_KIND, FILE_FORMAT)
        writer.add_tfidf("words", self.vectorizer)
        writer.add_logistic("head", self.head)
        if self.tuned is not None:
            writer.add_tensors("encoder", self.tuned)
        if self.examples is not None:
            writer.add_json("examples.texts", self.examples.texts)
            writer.add_json("examples.labels", self.examples.labels)
            writer.add_array("examples.vectors", self.examples.vectors)
        writer.save(path, {"categories": self.categories, "fine_tuned": self.tuned is not None})

    @classmethod
    def load(cls, path: Path) -> EmbeddedClassifier:
        if not Path(path).exists():
            raise InputError(f"no report classifier at {path}; train one with {RETRAIN}")
        model_file = read_model_file(path, FILE_KIND, FILE_FORMAT, InputError, f"retrain with {RETRAIN}")
        tuned = model_file.tensors("encoder") if model_file.has("encoder.safetensors") else None
        with model_file.rebuilding():
            model = cls(model_file.tfidf("words", _word_vectorizer()), model_file.logistic("head", _head()), tuned)
            if model_file.has("examples.vectors.npy"):
                model.examples = Examples(
                    list(model_file.json("examples.texts")), list(model_file.json("examples.labels")),
                    model_file.array("examples.vectors").astype(np.float32),
                )
            _check_fits(model)
            if tuned is not None:
                model.encoder  # noqa: B018 - a tuned part that does not fit MiniLM is refused now, not at the first report
        return model


def _check_fits(model: EmbeddedClassifier) -> None:
    """Raise ValueError for parts that load but could not classify a report together: each one failed
    every batch in the worker (the reports stayed pending) or, with a NaN weight, gave NaN confidences."""
    vocabulary, idf = model.vectorizer.vocabulary_, _finite("words.idf", model.vectorizer.idf_)
    if not all(isinstance(term, str) for term in vocabulary) or sorted(vocabulary.values()) != list(range(len(idf))):
        raise ValueError("words.terms is not a list of distinct words, one per idf weight")
    classes = model.head.classes_
    if classes.ndim != 1 or classes.dtype.kind != "U" or len(classes) < 2 or len(set(classes.tolist())) != len(classes):
        raise ValueError("head.classes is not a list of distinct names")
    coef, intercept = _finite("head.coef", model.head.coef_), _finite("head.intercept", model.head.intercept_)
    rows, width = 1 if len(classes) == 2 else len(classes), len(idf) + EMBEDDING_WIDTH
    if coef.shape != (rows, width):
        raise ValueError(f"the head needs {rows} x {width} coefficients, it holds {coef.shape}")
    if intercept.shape != (rows,):
        raise ValueError(f"the head needs {rows} intercepts, it holds {intercept.shape}")
    if model.examples is not None:
        texts, labels, vectors = model.examples.texts, model.examples.labels, _finite("examples.vectors", model.examples.vectors)
        if not all(isinstance(text, str) for text in [*texts, *labels]):
            raise ValueError("the examples' texts and labels are not all text")
        if vectors.shape != (len(texts), EMBEDDING_WIDTH) or len(labels) != len(texts):
            raise ValueError(
                f"the examples need {len(texts)} x {EMBEDDING_WIDTH} vectors, they hold {vectors.shape} for {len(labels)} labels"
            )


def _finite(name: str, array: np.ndarray) -> np.ndarray:
    if array.dtype.kind not in "fiu":
        raise ValueError(f"{name} holds {array.dtype}, not numbers")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds a value that is not a finite number")
    return array


@dataclass(frozen=True)
class Examples:
    """Labeled training reports kept with the classifier to show as the nearest neighbours of a new one."""

    texts: list[str]
    labels: list[str]
    vectors: np.ndarray

    @classmethod
    def sample(
        cls, texts: list[str], labels: list[str], vectors: np.ndarray, per_category: int = EXAMPLES_PER_CATEGORY
    ) -> Examples:
        """Up to ``per_category`` reports of each category (a fixed random choice), cut to 300 characters."""
        rng = np.random.default_rng(0)
        chosen: list[int] = []
        for label in sorted(set(labels)):
            rows = [i for i, value in enumerate(labels) if value == label]
            chosen += sorted(rng.permutation(rows)[:per_category].tolist())
        return cls(
            [texts[i][:300] for i in chosen], [labels[i] for i in chosen], vectors[chosen].astype(np.float16)
        )

    def nearest(self, vectors: np.ndarray, k: int = 3) -> list[list[dict[str, Any]]]:
        similarity = vectors @ self.vectors.astype(np.float32).T
        top = np.argsort(-similarity, axis=1)[:, :k]
        return [
            [{"text": self.texts[j], "category": self.labels[j], "similarity": round(float(similarity[row, j]), 3)} for j in top[row]]
            for row in range(len(vectors))
        ]


def _word_vectorizer(min_df: int = 2) -> TfidfVectorizer:
    """The word features' settings, for training and for reading a trained classifier back."""
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df)


def fit_word_features(texts: list[str]) -> tuple[TfidfVectorizer, csr_matrix] | None:
    """The word features of ``texts`` and their vectorizer: terms in two reports or more, or every term
    when a small set shares none (scikit-learn raised "no terms remain"); None when there is no word at all."""
    for min_df in (2, 1):
        vectorizer = _word_vectorizer(min_df)
        try:
            return vectorizer, vectorizer.fit_transform(texts)
        except ValueError:  # scikit-learn's "no terms remain" / "empty vocabulary"
            continue
    return None


def _head() -> LogisticRegression:
    """The linear head's settings, for training and for reading a trained classifier back."""
    return LogisticRegression(C=100.0, max_iter=5000)


def _features(words: Any, vectors: np.ndarray) -> csr_matrix:
    return hstack([words, csr_matrix(vectors)]).tocsr()
