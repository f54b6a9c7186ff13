from pathlib import Path

import numpy as np
import pytest

from knowledge.errors import InputError
from knowledge.model_files import ModelWriter
from tests.tripwire import booby_trapped_pickle
from tools.reports.classifiers.embedded import FILE_FORMAT, FILE_KIND, EmbeddedClassifier, report_embeddings
from tools.reports.redaction import redact
from tools.reports.evaluation import evaluate_split


def test_embedded_classifier_sorts_unseen_demo_reports(classifier: EmbeddedClassifier, labeled_reports) -> None:
    _, test = labeled_reports
    predictions = classifier.classify([redact(r["text"]) for r in test])
    accuracy = sum(p.category == r["category"] for p, r in zip(predictions, test)) / len(test)
    assert accuracy >= 0.9


def test_a_saved_classifier_gives_exactly_the_trained_ones_probabilities(
    classifier: EmbeddedClassifier, labeled_reports, tmp_path: Path
) -> None:
    _, test = labeled_reports
    texts = [redact(r["text"]) for r in test]
    embeddings = report_embeddings(texts)
    classifier.save(tmp_path / "report_classifier.model")

    reloaded = EmbeddedClassifier.load(tmp_path / "report_classifier.model")

    assert reloaded.categories == classifier.categories
    assert reloaded.classify(["app crashes when I open it"])[0].category == "crash"
    assert np.array_equal(reloaded.probabilities(texts, embeddings), classifier.probabilities(texts, embeddings))


def test_an_old_pickled_classifier_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "classifier-was-unpickled"
    old = tmp_path / "report_classifier.joblib"
    old.write_bytes(booby_trapped_pickle(marker))

    with pytest.raises(InputError, match="not a culprit model file.*retrain with `culprit reports train FILE`"):
        EmbeddedClassifier.load(old)
    assert not marker.exists()


def test_a_classifier_file_of_another_layout_or_kind_is_refused(tmp_path: Path) -> None:
    newer = ModelWriter(FILE_KIND, FILE_FORMAT + 1).save(tmp_path / "newer.model", {})
    with pytest.raises(InputError, match=f"version {FILE_FORMAT + 1}, not .*; retrain with `culprit reports train"):
        EmbeddedClassifier.load(newer)
    ranker = ModelWriter("culprit ranker", 1).save(tmp_path / "ranker.model", {})
    with pytest.raises(InputError, match="holds 'culprit ranker'"):
        EmbeddedClassifier.load(ranker)


def test_evaluation_reports_scores_and_a_baseline_from_the_same_split(labeled_reports) -> None:
    train, test = labeled_reports
    reports = train + test
    result = evaluate_split([r["text"] for r in reports], [r["category"] for r in reports], seed=1)
    assert result.n + result.n_train == len(reports) and abs(result.n - 0.2 * len(reports)) <= 1
    assert result.macro_f1 >= 0.85 and result.baseline is not None and 0.5 <= result.baseline.macro_f1 <= 1.0
    assert sum(map(sum, result.confusion)) == result.n
    assert set(result.per_category) == set(result.labels)
