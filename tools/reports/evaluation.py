"""How well a report classifier does on labeled reports, next to a TF-IDF baseline from the same run.

A number alone says little: the baseline (words only, logistic regression) is
trained and tested on the very same split, so "better than the baseline" is
measured, not remembered. The split is either the stratified 80/20 one or
exactly the train and test files a user gives; the configured LLM classifier,
when there is one, is scored on the same test reports.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import train_test_split

from knowledge.errors import InputError
from tools.reports.classifiers import Classifier
from tools.reports.classifiers.embedded import EmbeddedClassifier, fit_word_features
from tools.reports.classifiers.finetune import FineTuning, Progress


@dataclass(frozen=True)
class CategoryScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Scores:
    """One classifier's scores on the test reports (a baseline's or the LLM's next to the main one)."""

    accuracy: float
    macro_f1: float
    per_category: dict[str, CategoryScore]


@dataclass(frozen=True)
class Evaluation:
    """Scores on the held-out reports; ``confusion[i][j]`` counts true ``labels[i]`` predicted ``labels[j]``.

    ``baseline`` is TF-IDF trained on the same training reports (absent when a
    trained model is scored without them); ``llm`` is the configured LLM
    classifier on the same test reports, when there is one.
    """

    n: int
    n_train: int
    split: str
    fine_tuned: bool
    accuracy: float
    macro_f1: float
    per_category: dict[str, CategoryScore]
    labels: list[str]
    confusion: list[list[int]]
    baseline: Scores | None
    llm: Scores | None = None
    below_other_confidence: int | None = None

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


def scores(truth: list[str], predicted: list[str], labels: list[str]) -> Scores:
    accuracy, macro, per_category, _ = score(truth, predicted, labels)
    return Scores(accuracy, macro, per_category)


def tfidf_baseline(train_texts: list[str], train_labels: list[str], test_texts: list[str]) -> list[str]:
    """Words only: TF-IDF unigrams and bigrams under logistic regression (C tuned on this data).

    Terms in two reports or more; when a small training set has none, every term; when its
    reports hold no word at all (empty, or redacted away), the most frequent category, so the
    evaluation the classifier was just trained for is not lost to the baseline."""
    fitted = fit_word_features(train_texts)
    if fitted is None:
        return [Counter(train_labels).most_common(1)[0][0]] * len(test_texts)
    vectorizer, features = fitted
    model = LogisticRegression(C=10.0, max_iter=3000).fit(features, train_labels)
    return [str(label) for label in model.predict(vectorizer.transform(test_texts))]


@dataclass(frozen=True)
class Labeled:
    """Report texts and their categories, in the same order."""

    texts: list[str]
    labels: list[str]


def stratified_split(reports: Labeled, seed: int = 42, test_size: float = 0.2) -> tuple[Labeled, Labeled]:
    """(train, test): the stratified split ``culprit reports evaluate`` uses without ``--train``."""
    counts = Counter(reports.labels)
    if len(counts) < 2:
        raise InputError(f"evaluation needs two categories or more; every labeled report is {next(iter(counts), 'unlabeled')!r}")
    if scarce := sorted(name for name, count in counts.items() if count < 2):
        raise InputError(  # naming them: "two in each of two categories" read as met by a file with three such categories
            f"evaluation needs two labeled reports or more in every category; a single labeled report in {', '.join(map(repr, scarce))}: "
            "label more of them, or remove them"
        )
    held_out, kept = math.ceil(test_size * len(reports.texts)), math.floor((1 - test_size) * len(reports.texts))
    if min(held_out, kept) < len(counts):  # scikit-learn's stratified split needs a report of each category on each side
        raise InputError(
            f"{len(reports.texts)} labeled reports in {len(counts)} categories are too few to hold out one of each: "
            f"label at least {math.ceil(len(counts) / min(test_size, 1 - test_size))}, or give the training reports with --train"
        )
    indices = np.arange(len(reports.texts))
    train_idx, test_idx = train_test_split(indices, test_size=test_size, stratify=reports.labels, random_state=seed)
    return _subset(reports, train_idx), _subset(reports, test_idx)


def evaluate_split(
    texts: list[str],
    labels: list[str],
    seed: int = 42,
    test_size: float = 0.2,
    on_progress: Progress | None = None,
    fine_tune: FineTuning | None = None,
    llm: Classifier | None = None,
    other_confidence: float | None = None,
) -> Evaluation:
    """Stratified split, train the embedded classifier and the baseline on one part, score both on the other."""
    train, test = stratified_split(Labeled(texts, labels), seed, test_size)
    return evaluate_given(train, test, on_progress, fine_tune, llm, other_confidence, split=f"stratified 80/20, seed {seed}")


def evaluate_given(
    train: Labeled,
    test: Labeled,
    on_progress: Progress | None = None,
    fine_tune: FineTuning | None = None,
    llm: Classifier | None = None,
    other_confidence: float | None = None,
    split: str = "given",
) -> Evaluation:
    """Train on exactly ``train`` and score on exactly ``test``, next to TF-IDF trained on the same reports."""
    if len(set(train.labels)) < 2:
        raise InputError("the training reports need at least two categories")
    if not test.texts:
        raise InputError("there are no labeled test reports to score")
    model = EmbeddedClassifier.train(train.texts, train.labels, fine_tune=fine_tune, on_progress=on_progress)
    return evaluate_model(model, test, train, on_progress, llm, other_confidence, split=split)


def evaluate_model(
    model: Classifier,
    test: Labeled,
    train: Labeled | None = None,
    on_progress: Progress | None = None,
    llm: Classifier | None = None,
    other_confidence: float | None = None,
    split: str = "given",
) -> Evaluation:
    """Score a trained classifier on ``test``; the TF-IDF baseline needs the ``train`` reports."""
    report = on_progress or (lambda _stage, _done, _total: None)
    report("classifying the test reports", 0, len(test.texts))
    predictions = model.classify(test.texts)
    report("classifying the test reports", len(test.texts), len(test.texts))
    label_order = sorted(set(test.labels) | set(model.categories) | set(train.labels if train else []))
    accuracy, macro, per_category, matrix = score(test.labels, [p.category for p in predictions], label_order)
    baseline = None
    if train is not None:
        report("training the TF-IDF baseline", 0, 1)
        baseline = scores(test.labels, tfidf_baseline(train.texts, train.labels, test.texts), label_order)
    llm_scores = None
    if llm is not None:
        report("asking the LLM classifier", 0, len(test.texts))
        llm_scores = scores(test.labels, [p.category for p in llm.classify(test.texts)], label_order)
    return Evaluation(
        n=len(test.texts),
        n_train=len(train.texts) if train else 0,
        split=split,
        fine_tuned=getattr(model, "tuned", None) is not None,
        accuracy=accuracy,
        macro_f1=macro,
        per_category=per_category,
        labels=label_order,
        confusion=matrix,
        baseline=baseline,
        llm=llm_scores,
        below_other_confidence=(
            None if other_confidence is None else sum(p.confidence < other_confidence for p in predictions)
        ),
    )


def _subset(reports: Labeled, indices: np.ndarray) -> Labeled:
    return Labeled([reports.texts[i] for i in indices], [reports.labels[i] for i in indices])
