"""Every classification keeps a why (nearest labeled examples, heaviest words); responders relabel
reports, the counts follow, and the next training learns from them."""

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app
from knowledge.config import get_settings
from knowledge.db import migrate, session_scope
from knowledge.errors import InputError
from knowledge.reports import CategoryDaily
from tools.reports.classifiers.embedded import EmbeddedClassifier
from tools.reports.intake import IncomingReport, ingest_reports
from tools.reports.labels import relabel_report, report_with_why, stored_labels
from tools.reports.redaction import redact
from tools.reports.trends import trend_tools

DAY = datetime(2025, 6, 2, 12, tzinfo=UTC)


def test_a_classification_says_why_with_its_own_words_and_labeled_neighbours(classifier: EmbeddedClassifier, labeled_reports, tmp_path: Path) -> None:
    _, test = labeled_reports
    texts = [redact(r["text"]) for r in test[:20]]

    predictions = classifier.classify(texts)

    analyse = classifier.vectorizer.build_analyzer()
    for text, prediction in zip(texts, predictions, strict=True):
        assert prediction.why is not None and len(prediction.why["neighbours"]) == 3
        assert prediction.why["words"] and all(w["weight"] > 0 and w["term"] in analyse(text) for w in prediction.why["words"])
        similarities = [n["similarity"] for n in prediction.why["neighbours"]]
        assert similarities == sorted(similarities, reverse=True)
    agreeing = sum(p.why["neighbours"][0]["category"] == p.category for p in predictions)
    assert agreeing >= 15, "the nearest labeled example mostly shares the predicted category"
    classifier.save(tmp_path / "c.model")
    assert EmbeddedClassifier.load(tmp_path / "c.model").classify(texts) == predictions


def _daily(url: str) -> dict[str, int]:
    with session_scope(url) as session:
        return {row.category: row.count for row in session.scalars(select(CategoryDaily).where(CategoryDaily.day == date(2025, 6, 2)))}


def test_intake_keeps_the_why_and_a_relabel_moves_the_count_and_feeds_training(database_url: str, classifier: EmbeddedClassifier) -> None:
    reports = [
        IncomingReport("r1", "the app crashes every time I open the camera", DAY),
        IncomingReport("r2", "I cannot log in, it says my password is wrong", DAY),
    ]
    ingest_reports(reports, classifier=classifier, other_confidence=0.0, url=database_url)
    stored = report_with_why("r1", database_url)
    assert stored["category"] == "crash" and stored["why"]["neighbours"] and stored["label"] is None
    before = _daily(database_url)

    with pytest.raises(InputError, match=r"no report category 'camra'; the categories are: crash, .*--new` starts a new one"):
        relabel_report("r1", "camra", database_url)
    assert _daily(database_url) == before and report_with_why("r1", database_url)["label"] is None, "a typo changes nothing"

    moved = relabel_report("r1", "camera", database_url, new=True)

    assert (moved.previous, moved.category) == ("crash", "camera")
    after = _daily(database_url)
    assert after["crash"] == before["crash"] - 1 and after["camera"] == 1
    assert report_with_why("r1", database_url)["category"] == "camera"
    assert stored_labels(database_url) == [(redact(reports[0].text), "camera")]
    with pytest.raises(InputError, match="no stored report 'nope'"):
        relabel_report("nope", "camera", database_url)
    with pytest.raises(InputError, match="1 to 200 characters"):
        relabel_report("r2", " ", database_url)
    assert relabel_report("r2", "other", database_url).category == "other", "where unsure reports go, before any did"

    answer = trend_tools(database_url, DAY.date())[0].invoke({"topic": "password", "days": 7})
    assert "words that weighed most:" in answer and "like [" in answer


def test_show_relabel_and_retrain_from_the_terminal(data_dir: Path, tmp_path: Path, labeled_reports) -> None:
    train, _ = labeled_reports
    labeled = tmp_path / "labeled.jsonl"
    labeled.write_text("".join(json.dumps({"id": f"t{i}", "text": r["text"], "category": r["category"]}) + "\n" for i, r in enumerate(train)))
    runner = CliRunner()
    assert runner.invoke(app, ["reports", "train", str(labeled), "--no-fine-tune"]).exit_code == 0
    incoming = tmp_path / "incoming.jsonl"
    incoming.write_text(
        json.dumps({"id": "n1", "text": "the app crashes when I rotate the phone", "created_at": "2025-06-02T10:00:00Z"}) + "\n"
        + json.dumps({"id": "f1", "text": "the feed is blank after the update", "category": "feed"}) + "\n"
    )
    assert runner.invoke(app, ["reports", "ingest", str(incoming)]).exit_code == 0

    shown = runner.invoke(app, ["reports", "show", "n1"])
    assert shown.exit_code == 0 and "words that weighed most:" in shown.output and "like [" in shown.output
    assert "labeled" not in shown.output.splitlines()[0]
    from_file = " ".join(runner.invoke(app, ["reports", "show", "f1"]).output.split())  # Rich wraps at 80 columns
    assert ", labeled 'feed' by the labeled file it was ingested from" in from_file, "it used to say 'by a person'"
    typo = runner.invoke(app, ["reports", "relabel", "n1", "crsh"])
    assert typo.exit_code == 1 and "no report category 'crsh' (did you mean 'crash'?)" in str(typo.exception)
    assert json.loads(runner.invoke(app, ["reports", "show", "n1", "--json"]).stdout)["label"] is None
    relabeled = runner.invoke(app, ["reports", "relabel", "n1", "rotation", "--new"])
    assert relabeled.exit_code == 0 and "-> rotation" in relabeled.output
    relabeled_shown = json.loads(runner.invoke(app, ["reports", "show", "n1", "--json"]).stdout)
    assert (relabeled_shown["label"], relabeled_shown["label_origin"]) == ("rotation", "responder")
    assert ", relabeled 'rotation' by a person" in " ".join(runner.invoke(app, ["reports", "show", "n1"]).output.split())

    retrained = runner.invoke(app, ["reports", "train", str(labeled), "--no-fine-tune"])
    assert retrained.exit_code == 0 and "(2 more from stored labels)" in retrained.output, retrained.output  # n1 and f1
    migrate(get_settings().resolved_database_url)
    model = EmbeddedClassifier.load(data_dir / "models" / "report_classifier.model")
    assert "rotation" in model.categories
    missing = runner.invoke(app, ["reports", "show", "gone"])
    assert missing.exit_code == 1 and "no stored report 'gone'" in str(missing.exception)


def test_a_report_stored_before_any_classifier_is_not_listed_as_the_least_sure(database_url: str, classifier: EmbeddedClassifier) -> None:
    from tools.reports.digest import least_sure_reports

    ingest_reports([IncomingReport("early", "the feed never loads", DAY)], classifier=None, other_confidence=0.4, url=database_url)
    ingest_reports([IncomingReport("later", "the app crashes every time I open the camera", DAY)],
                   classifier=classifier, other_confidence=0.0, url=database_url)  # fmt: skip

    assert report_with_why("early", database_url)["confidence"] is None, "no classifier saw it: it has no confidence"
    week = (datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 8, tzinfo=UTC))
    assert [r["id"] for r in least_sure_reports(*week, database_url)] == ["later"]
