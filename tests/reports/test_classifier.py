import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs
from typer.testing import CliRunner

from bot.cli import app
from knowledge.errors import InputError
from knowledge.model_files import ModelWriter
from tests.tripwire import booby_trapped_pickle
from tools.reports.classifiers.embedded import FILE_FORMAT, FILE_KIND, EmbeddedClassifier, report_embeddings
from tools.reports.classifiers.finetune import FineTuning
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



def test_a_few_reports_sharing_no_word_still_train_a_classifier_and_reports_without_words_are_refused(tmp_path: Path) -> None:
    texts, labels = ["app crashes on start", "cannot login with my password", "payment declined twice"], ["crash", "login", "payments"]
    classifier = EmbeddedClassifier.train(texts, labels)
    classifier.save(tmp_path / "report_classifier.model")
    reloaded = EmbeddedClassifier.load(tmp_path / "report_classifier.model")
    assert reloaded.categories == ["crash", "login", "payments"]
    assert reloaded.classify(["the app crashes on start"])[0].category == "crash"

    with pytest.raises(InputError, match="no words to learn from"):
        EmbeddedClassifier.train(["", "?!", " "], ["crash", "login", "crash"])


def test_a_reports_embedding_does_not_depend_on_the_reports_batched_beside_it(labeled_reports) -> None:
    """An int8 encoder scaled activations per batch: the same report moved by up to 0.07 with its neighbours."""
    _, test = labeled_reports
    texts = [redact(r["text"]) for r in test]
    alone = np.concatenate([report_embeddings([text]) for text in texts[:8]])
    batched = report_embeddings(texts)[:8]
    assert np.abs(alone - batched).max() < 0.005


def test_an_old_pickled_classifier_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "classifier-was-unpickled"
    old = tmp_path / "report_classifier.joblib"
    old.write_bytes(booby_trapped_pickle(marker))

    with pytest.raises(InputError, match="not a culprit model file.*retrain with `culprit reports train FILE`"):
        EmbeddedClassifier.load(old)
    assert not marker.exists()


def test_an_old_pickled_classifier_left_where_culprit_kept_it_is_named_not_passed_over(
    data_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "classifier-was-unpickled"
    old = data_dir / "models" / "report_classifier.joblib"  # what culprit before model format 1 wrote
    old.parent.mkdir(parents=True)
    old.write_bytes(booby_trapped_pickle(marker))
    incoming = tmp_path / "reports.jsonl"
    incoming.write_text(json.dumps({"id": "r1", "text": "app crashes on start"}) + "\n")
    said = f"the model file {old} is in an old format (pickle), not loaded; retrain with `culprit reports train FILE`"

    with capture_logs() as logs:
        ingested = [CliRunner().invoke(app, ["reports", "ingest", str(incoming)]) for _ in range(2)]

    for result in ingested:
        assert result.exit_code == 0, result.output
        assert "".join(said.split()) in "".join(result.output.split())  # Rich wraps the long path anywhere
    warnings = [entry for entry in logs if entry["event"] == "report_classifier_unreadable"]
    assert [(entry["log_level"], entry["path"]) for entry in warnings] == [("warning", str(old))]
    assert not marker.exists()


def _classifier_file(path: Path, **changed: object) -> Path:
    """A classifier file as training writes one (two words, two categories, no fine-tuning), with ``changed`` members."""
    members: dict[str, object] = {
        "terms": ["app", "crash"], "idf": np.ones(2), "classes": ["crash", "login"],
        "coef": np.zeros((1, 2 + 384)), "intercept": np.zeros(1),
        "texts": ["app crash"], "labels": ["crash"], "vectors": np.zeros((1, 384), dtype=np.float16),
    } | changed
    writer = ModelWriter(FILE_KIND, FILE_FORMAT)
    writer.add_json("words.terms", members["terms"])
    writer.add_array("words.idf", members["idf"])
    writer.add_json("head.classes", members["classes"])
    writer.add_array("head.coef", members["coef"])
    writer.add_array("head.intercept", members["intercept"])
    writer.add_json("examples.texts", members["texts"])
    writer.add_json("examples.labels", members["labels"])
    writer.add_array("examples.vectors", members["vectors"])
    return writer.save(path, {"categories": members["classes"], "fine_tuned": False})


@pytest.mark.parametrize(
    ("changed", "why"),
    [
        ({"coef": np.zeros((1, 10))}, "head needs 1 x 386 coefficients, it holds"),
        ({"classes": ["crash", "login", "feed"]}, "head needs 3 x 386 coefficients, it holds"),
        ({"coef": np.array([["x"] * 386])}, "head.coef holds <U1, not numbers"),
        ({"coef": np.full((1, 386), np.nan)}, "head.coef holds a value that is not a finite number"),
        ({"intercept": np.zeros((1, 1))}, "head needs 1 intercepts, it holds"),
        ({"idf": np.array(["x", "y"])}, "words.idf holds <U1, not numbers"),
        ({"classes": [["crash"], ["login"]]}, "head.classes is not a list of distinct names"),
        ({"terms": [1, 2]}, "words.terms is not a list of distinct words"),
        ({"vectors": np.zeros((1, 10))}, "examples need 1 x 384 vectors, they hold"),
        ({"labels": ["crash", "login"]}, "examples need 1 x 384 vectors, they hold"),
    ],
    ids=["narrow head", "classes and head", "string coef", "nan coef", "intercept", "string idf",
         "nested classes", "numbers for words", "narrow examples", "labels and examples"],
)
def test_a_classifier_file_whose_parts_do_not_fit_is_refused_at_load_not_at_every_report(
    tmp_path: Path, changed: dict[str, object], why: str
) -> None:
    # Each loaded, then failed every batch in the worker (reports stayed pending, an error logged each
    # time) or, with NaN coefficients, stored every report with a NaN confidence.
    assert EmbeddedClassifier.load(_classifier_file(tmp_path / "good.model")).categories == ["crash", "login"]
    with pytest.raises(InputError, match=f"does not hold the model it claims .*{re.escape(why)}.*retrain with `culprit reports train"):
        EmbeddedClassifier.load(_classifier_file(tmp_path / "bad.model", **changed))


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


def _separation(vectors: np.ndarray, labels: list[str]) -> float:
    """Mean cosine of same-category pairs minus that of other-category pairs."""
    similarity = vectors @ vectors.T
    same = np.equal.outer(labels, labels)
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    return float(similarity[same & off_diagonal].mean() - similarity[~same].mean())


@pytest.mark.slow
def test_fine_tuning_pulls_a_category_together_and_the_encoder_is_saved_as_safetensors(labeled_reports, tmp_path: Path) -> None:
    train, test = labeled_reports
    texts, labels = [redact(r["text"]) for r in train[:120]], [r["category"] for r in train[:120]]
    stages: set[str] = set()

    model = EmbeddedClassifier.train(
        texts, labels, fine_tune=FineTuning(max_steps=6, batch_size=32, learning_rate=5e-4, seed=0),
        on_progress=lambda stage, _done, _total: stages.add(stage),
    )

    assert model.tuned is not None and {"caching frozen layers", "tuning the encoder", "embedding reports"} <= stages
    assert {name.split(".")[2] for name in model.tuned} == {"4", "5"}, "only the top two layers are tuned"
    assert _separation(model.embed(texts), labels) > _separation(report_embeddings(texts), labels) + 0.05
    path = tmp_path / "report_classifier.model"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert "encoder.safetensors" in archive.namelist()
        assert not any(name.endswith((".pkl", ".pickle", ".joblib", ".bin", ".pt")) for name in archive.namelist())
    reloaded = EmbeddedClassifier.load(path)
    assert reloaded.tuned is not None and all(np.array_equal(reloaded.tuned[k], v) for k, v in model.tuned.items())
    held_out = [redact(r["text"]) for r in test]
    assert np.array_equal(reloaded.probabilities(held_out), model.probabilities(held_out))


def test_a_classifier_file_whose_encoder_part_is_damaged_or_misshapen_is_refused(classifier: EmbeddedClassifier, tmp_path: Path) -> None:
    def with_encoder(name: str, tensors: dict[str, np.ndarray] | None, raw: bytes = b"") -> Path:
        writer = ModelWriter(FILE_KIND, FILE_FORMAT)
        writer.add_tfidf("words", classifier.vectorizer)
        writer.add_logistic("head", classifier.head)
        if tensors is not None:
            writer.add_tensors("encoder", tensors)
        path = writer.save(tmp_path / name, {})
        if raw:
            with zipfile.ZipFile(path, "a") as archive:
                archive.writestr("encoder.safetensors", raw)
        return path

    with pytest.raises(InputError, match="damaged encoder.safetensors"):
        EmbeddedClassifier.load(with_encoder("garbage.model", None, raw=b"\xff" * 64))
    misshapen = {"encoder.layer.5.output.dense.weight": np.zeros((3, 3), dtype=np.float32)}
    with pytest.raises(InputError, match="does not hold the model it claims.*shape"):
        EmbeddedClassifier.load(with_encoder("misshapen.model", misshapen))
    foreign = {"decoder.head.weight": np.zeros((3, 3), dtype=np.float32)}
    with pytest.raises(InputError, match="lacks"):
        EmbeddedClassifier.load(with_encoder("foreign.model", foreign))
    # Weights that are not finite floats loaded, then every batch failed ("Input X contains NaN") in the worker.
    bias = "encoder.layer.5.output.dense.bias"
    for label, values in (("nan", np.full(384, np.nan, np.float32)), ("inf", np.full(384, np.inf, np.float16)), ("ints", np.zeros(384, np.int8))):
        with pytest.raises(InputError, match=f"does not hold the model it claims.*{bias} holds {values.dtype}"):
            EmbeddedClassifier.load(with_encoder(f"{label}.model", {bias: values}))
