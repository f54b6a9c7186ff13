from pathlib import Path

from tools.reports.classifiers.embedded import EmbeddedClassifier
from tools.reports.redaction import redact
from tools.reports.evaluation import evaluate_split


def test_embedded_classifier_sorts_unseen_demo_reports(classifier: EmbeddedClassifier, labeled_reports, tmp_path: Path) -> None:
    _, test = labeled_reports
    predictions = classifier.classify([redact(r["text"]) for r in test])
    accuracy = sum(p.category == r["category"] for p, r in zip(predictions, test)) / len(test)
    assert accuracy >= 0.9

    classifier.save(tmp_path / "model.joblib")
    reloaded = EmbeddedClassifier.load(tmp_path / "model.joblib")
    assert reloaded.classify(["app crashes when I open it"])[0].category == "crash"


def test_evaluation_reports_scores_and_a_baseline_from_the_same_split(labeled_reports) -> None:
    train, test = labeled_reports
    reports = train + test
    result = evaluate_split([r["text"] for r in reports], [r["category"] for r in reports], seed=1)
    assert result.n + result.n_train == len(reports) and abs(result.n - 0.2 * len(reports)) <= 1
    assert result.macro_f1 >= 0.85 and 0.5 <= result.baseline["macro_f1"] <= 1.0
    assert sum(map(sum, result.confusion)) == result.n
    assert set(result.per_category) == set(result.labels)
