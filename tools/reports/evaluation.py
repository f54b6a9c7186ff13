"""How well a report classifier does on labeled reports, next to a TF-IDF baseline from the same run.

A number alone says little: the baseline (words only, logistic regression) is
trained and tested on the very same split, so "better than the baseline" is
measured, not remembered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import train_test_split

from knowledge.errors import InputError
from tools.reports.classifiers.embedded import EmbeddedClassifier, report_embeddings


@dataclass(frozen=True)
class CategoryScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Evaluation:
    """Scores on the held-out reports; ``confusion[i][j]`` counts true ``labels[i]`` predicted ``labels[j]``."""

    n: int
    n_train: int
    accuracy: float
    macro_f1: float
    per_category: dict[str, CategoryScore]
    labels: list[str]
    confusion: list[list[int]]
    baseline: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def score(truth: list[str], predicted: list[str], labels: list[str]) -> tuple[float, float, dict[str, CategoryScore], list[list[int]]]:
    """Accuracy, macro-F1, per-category scores and the confusion matrix."""
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    per_category = {
        label: CategoryScore(float(p), float(r), float(f), int(s))
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }
    matrix = confusion_matrix(truth, predicted, labels=labels).tolist()
    macro = float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0))
    return float(accuracy_score(truth, predicted)), macro, per_category, matrix


def tfidf_baseline(train_texts: list[str], train_labels: list[str], test_texts: list[str]) -> list[str]:
    """Words only: TF-IDF unigrams and bigrams under logistic regression (C tuned on this data)."""
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    model = LogisticRegression(C=10.0, max_iter=3000)
    model.fit(vectorizer.fit_transform(train_texts), train_labels)
    return [str(label) for label in model.predict(vectorizer.transform(test_texts))]


def evaluate_split(
    texts: list[str],
    labels: list[str],
    seed: int = 42,
    test_size: float = 0.2,
    on_step: Callable[[str], None] | None = None,
) -> Evaluation:
    """Stratified split, train the embedded classifier and the baseline on one part, score both on the other."""
    counts = {label: labels.count(label) for label in set(labels)}
    if len(counts) < 2 or min(counts.values()) < 2:
        raise InputError("evaluation needs at least two labeled reports in each of two categories")
    step = on_step or (lambda _message: None)
    indices = np.arange(len(texts))
    train_idx, test_idx = train_test_split(indices, test_size=test_size, stratify=labels, random_state=seed)
    step("embedding reports")
    vectors = report_embeddings(texts)
    train_texts = [texts[i] for i in train_idx]
    train_labels = [labels[i] for i in train_idx]
    test_texts = [texts[i] for i in test_idx]
    truth = [labels[i] for i in test_idx]
    step("training the embedded classifier")
    model = EmbeddedClassifier.train(train_texts, train_labels, embeddings=vectors[train_idx])
    predicted = [p.category for p in model.classify(test_texts, embeddings=vectors[test_idx])]
    step("training the TF-IDF baseline")
    baseline_predicted = tfidf_baseline(train_texts, train_labels, test_texts)
    label_order = sorted(counts)
    accuracy, macro, per_category, matrix = score(truth, predicted, label_order)
    base_accuracy, base_macro, _, _ = score(truth, baseline_predicted, label_order)
    return Evaluation(
        n=len(test_texts),
        n_train=len(train_texts),
        accuracy=accuracy,
        macro_f1=macro,
        per_category=per_category,
        labels=label_order,
        confusion=matrix,
        baseline={"accuracy": base_accuracy, "macro_f1": base_macro},
    )
