"""``culprit reports evaluate`` on a given split and on an already trained classifier, as users run it."""

import json
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from knowledge.demo.reports import demo_reports
from tests.test_settings import culprit
from tools.reports.classifiers import Prediction
from tools.reports.evaluation import Labeled, evaluate_model


def _write(path: Path, reports: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"id": r["id"], "text": r["text"], "category": r["category"]}) + "\n" for r in reports))
    return path


def _split(tmp_path: Path) -> tuple[Path, Path, list[dict[str, str]]]:
    reports = demo_reports(days=21, seed=11).reports[::4][:200]
    return _write(tmp_path / "train.jsonl", reports[:150]), _write(tmp_path / "test.jsonl", reports[150:]), reports[150:]


def test_evaluate_scores_exactly_the_given_test_file_next_to_the_baseline(data_dir: Path, tmp_path: Path) -> None:
    train, test, test_reports = _split(tmp_path)

    result = CliRunner().invoke(app, ["reports", "evaluate", str(test), "--train", str(train), "--no-fine-tune", "--json"])

    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["n"] == len(test_reports) and scores["n_train"] == 150
    assert scores["split"].startswith("train ") and scores["fine_tuned"] is False
    truth = [r["category"] for r in test_reports]
    assert [sum(row) for row in scores["confusion"]] == [truth.count(label) for label in scores["labels"]]
    assert {name: item["support"] for name, item in scores["per_category"].items()} == {label: truth.count(label) for label in scores["labels"]}
    assert scores["macro_f1"] > 0.8 and 0.5 <= scores["baseline"]["macro_f1"] <= 1.0
    assert set(scores["baseline"]["per_category"]) == set(scores["labels"]) and scores["llm"] is None


def test_evaluate_scores_a_trained_classifier_file_with_a_baseline_only_when_given_training_reports(
    data_dir: Path, tmp_path: Path
) -> None:
    train, test, test_reports = _split(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["reports", "train", str(train), "--no-fine-tune"]).exit_code == 0
    model = data_dir / "models" / "report_classifier.model"

    alone = json.loads(runner.invoke(app, ["reports", "evaluate", str(test), "--model", str(model), "--json"]).stdout)
    with_baseline = json.loads(
        runner.invoke(app, ["reports", "evaluate", str(test), "--model", str(model), "--train", str(train), "--json"]).stdout
    )

    assert alone["n"] == len(test_reports) and alone["n_train"] == 0 and alone["baseline"] is None
    assert alone["macro_f1"] > 0.8 and alone["confusion"] == with_baseline["confusion"]
    assert with_baseline["baseline"]["macro_f1"] > 0.5 and with_baseline["n_train"] == 150
    printed = runner.invoke(app, ["reports", "evaluate", str(test), "--model", str(model)])
    assert printed.exit_code == 0 and f"n={len(test_reports)}" in printed.output and "TF-IDF" not in printed.output


class _FirstCategory:
    """A classifier that always answers one category: the LLM slot's scores must show exactly that."""

    categories = ["crash", "login"]

    def classify(self, texts: list[str]) -> list[Prediction]:
        return [Prediction("crash", 0.3) for _ in texts]


def test_the_llm_classifier_is_scored_on_the_same_test_reports(classifier, labeled_reports) -> None:
    train, test = labeled_reports
    as_labeled = lambda rows: Labeled([r["text"] for r in rows], [r["category"] for r in rows])  # noqa: E731

    result = evaluate_model(classifier, as_labeled(test), as_labeled(train), llm=_FirstCategory(), other_confidence=0.99)

    crashes = sum(r["category"] == "crash" for r in test)
    assert result.llm is not None and result.llm.accuracy == crashes / len(test)
    assert result.llm.per_category["crash"].recall == 1.0 and result.llm.per_category["crash"].support == crashes
    assert result.accuracy > result.llm.accuracy
    assert 0 < result.below_other_confidence <= len(test)


def test_a_labeled_file_too_small_to_hold_out_each_category_says_how_many_reports_it_needs(
    data_dir: Path, tmp_path: Path
) -> None:
    from knowledge.errors import InputError

    few = [{"id": f"r{n}", "text": f"report {n} about {category}", "category": category}
           for n, category in enumerate(["login", "login", "crash", "crash", "payments", "payments"])]
    result = CliRunner().invoke(app, ["reports", "evaluate", str(_write(tmp_path / "few.jsonl", few)), "--no-fine-tune"])

    assert isinstance(result.exception, InputError), result.exception
    assert "6 labeled reports in 3 categories" in str(result.exception) and "label at least 15" in str(result.exception)


def test_a_category_with_a_single_labeled_report_is_named(data_dir: Path, tmp_path: Path) -> None:
    from knowledge.errors import InputError

    labels = ["login"] * 7 + ["crash"] * 2 + ["payments"] * 2 + ["billing"]
    reports = [{"id": f"r{n}", "text": f"report {n} about {category}", "category": category} for n, category in enumerate(labels)]
    result = CliRunner().invoke(app, ["reports", "evaluate", str(_write(tmp_path / "one.jsonl", reports)), "--no-fine-tune"])

    assert isinstance(result.exception, InputError), result.exception
    assert "a single labeled report in 'billing'" in str(result.exception)


def test_training_reports_without_shared_words_still_get_a_baseline(classifier, labeled_reports) -> None:
    _, test = labeled_reports
    test_reports = Labeled([r["text"] for r in test], [r["category"] for r in test])
    unique_words = Labeled(["app crashes", "cannot login", "payment declined"], ["crash", "login", "payments"])
    no_words = Labeled(["", "?!", " "], ["login", "crash", "login"])

    with_unique_words = evaluate_model(classifier, test_reports, unique_words)
    with_no_words = evaluate_model(classifier, test_reports, no_words)

    assert with_unique_words.baseline is not None and with_unique_words.confusion == with_no_words.confusion
    assert with_no_words.baseline is not None
    assert with_no_words.baseline.accuracy == sum(label == "login" for label in test_reports.labels) / len(test_reports.labels)


def test_a_seed_scikit_learn_cannot_take_is_a_usage_error(data_dir: Path, tmp_path: Path) -> None:
    """--seed -5 or 99999999999 reached train_test_split and ended in its InvalidParameterError traceback."""
    labeled = _write(tmp_path / "labeled.jsonl", demo_reports(days=21, seed=11).reports[::4][:60])
    for seed in ("-5", "99999999999"):
        result = CliRunner().invoke(app, ["reports", "evaluate", str(labeled), "--no-fine-tune", "--seed", seed, "--json"])
        assert result.exit_code == 2 and "Invalid value for '--seed'" in result.output, result.output


def test_training_shows_culprits_progress_and_not_the_model_librarys(tmp_path: Path) -> None:
    """Every command that loaded MiniLM printed transformers' "Loading weights" bar on stderr."""
    train, _, _ = _split(tmp_path)

    trained = culprit(["reports", "train", str(train), "--no-fine-tune", "--json"], tmp_path / "data")

    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["reports"] == 150
    assert "embedding reports" in trained.stderr and "Loading weights" not in trained.stderr, trained.stderr
