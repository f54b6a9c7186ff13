"""Calibration measured and held: ECE and reliability bins, a calibration chosen on repositories it
did not see, a threshold from a target precision, and no fixed confidences."""

from __future__ import annotations

from dataclasses import replace
import numpy as np
import pytest

from graph.rca_graph import replay_incident
from knowledge.config import Settings
from tools.rca.confidence import calibration_report, fit_confidence, hit_rate_words
from tools.rca.history.cases import History, case_candidates, case_query
from tools.rca.judges.local import RankerModel, load_model, save_model
from tools.rca.resources import RcaResources, answer_threshold, gate_threshold, load_resources


def test_ece_brier_and_bins_are_what_the_outcomes_say() -> None:
    report = calibration_report([0.15, 0.15, 0.95, 0.95, 0.95, 0.95], [False, True, True, True, True, False])
    low, high = report["bins"][1], report["bins"][9]
    assert (low["n"], low["confidence"], low["hit_rate"]) == (2, 0.15, 0.5)
    assert (high["n"], high["confidence"], high["hit_rate"]) == (4, 0.95, 0.75)
    assert report["ece"] == pytest.approx((2 * 0.35 + 4 * 0.2) / 6, abs=1e-4)
    assert report["brier"] == pytest.approx((0.15**2 + 0.85**2 + 3 * 0.05**2 + 0.95**2) / 6, abs=1e-4)
    assert sum(row["n"] for row in report["bins"]) == 6


def _outcomes(seed: int, n: int) -> tuple[list[list[float]], list[bool], list[str]]:
    """Answers whose five hold the cause more often when the five hold more of the score mass."""
    rng = np.random.default_rng(seed)
    rows, hits, repos = [], [], []
    for index in range(n):
        mass_logit = rng.normal(1.0, 2.0)
        rows.append([rng.random(), rng.random() * 2, rng.random(), rng.normal(), 5.0, mass_logit, 2.0, 2.0 * mass_logit])
        hits.append(bool(rng.random() < 1 / (1 + np.exp(-mass_logit))))
        repos.append(("curl", "git", "haproxy")[index % 3])
    return rows, hits, repos


def test_the_calibration_is_chosen_on_repositories_it_did_not_see_and_holds_on_new_answers() -> None:
    rows, hits, repos = _outcomes(1, 900)
    model = fit_confidence(rows, hits, repos)
    assert set(model.loro_ece) == {"curl", "git", "haproxy"} and max(model.loro_ece.values()) < 0.08
    assert "mass" in model.method  # the only column that tells hits from misses here
    fresh_rows, fresh_hits, _ = _outcomes(2, 3000)
    confidences = model.model.predict_proba(np.array(fresh_rows)[:, list(model.columns)])[:, 1]
    assert calibration_report(confidences, fresh_hits)["ece"] < 0.05
    threshold = model.threshold_for(0.9)
    assert threshold is not None
    answered = confidences >= threshold
    assert np.array(fresh_hits)[answered].mean() >= 0.87  # the held-out curve's promise, on new answers
    assert model.threshold_for(1.01) is None


def test_hit_rate_in_words() -> None:
    assert hit_rate_words(0.8) == "In past incidents like this, the cause was among these five 8 times in 10."
    assert hit_rate_words(0.97).endswith("more than 9 times in 10.")
    assert hit_rate_words(0.02).endswith("less than once in 10.")


def test_without_a_trained_ranker_the_confidence_is_computed_and_labelled_uncalibrated(history: History) -> None:
    case = history.cases[-1]
    answer, _kept = replay_incident(case_query(case), case_candidates(case, history.commits), RcaResources(model=None))
    assert answer.confident and len(answer.suggestions) == 5
    assert not answer.calibrated and "no trained ranker" in answer.uncalibrated_because
    assert answer.expected_hit_rate == ""
    assert 0 < answer.confidence < 1 and answer.confidence != 0.5


def test_five_or_fewer_candidates_are_not_given_a_fixed_certainty(history: History, trained: RankerModel) -> None:
    rows, hits, repos = _outcomes(5, 600)
    calibrated = replace(trained, confidence=fit_confidence(rows, hits, repos))
    case = history.cases[-1]
    few = case_candidates(case, history.commits)[:3]
    answer, _kept = replay_incident(case_query(case), few, RcaResources(model=calibrated, min_confidence=0.0))
    assert 0 < answer.confidence < 1.0
    assert not answer.calibrated and answer.uncalibrated_because.startswith("only 3 changes landed in the window")


def test_a_calibrated_answer_states_its_hit_rate_in_words(history: History, trained: RankerModel) -> None:
    rows, hits, repos = _outcomes(3, 600)
    calibrated = replace(trained, confidence=fit_confidence(rows, hits, repos))
    case = history.cases[-1]
    answer, _kept = replay_incident(case_query(case), case_candidates(case, history.commits),
                                    RcaResources(model=calibrated, min_confidence=0.0))
    assert answer.calibrated and answer.expected_hit_rate == hit_rate_words(answer.confidence)


def test_a_target_precision_picks_the_threshold_from_the_held_out_curve(
    history: History, trained: RankerModel, data_dir, database_url: str  # noqa: ANN001
) -> None:
    rows, hits, repos = _outcomes(4, 900)
    calibrated = replace(trained, confidence=fit_confidence(rows, hits, repos))
    path = save_model(calibrated, data_dir / "models" / "ranker.model")
    assert load_model(path).confidence.curve == calibrated.confidence.curve
    settings = Settings(data_dir=data_dir, database_url=database_url, min_confidence=0.1, target_precision=0.9)
    resources = load_resources(settings)
    expected = calibrated.confidence.threshold_for(0.9)
    assert expected is not None and expected > 0.1
    assert resources.min_confidence == expected
    assert any("CULPRIT_TARGET_PRECISION 0.90" in note for note in resources.notes)
    unreachable = load_resources(settings.model_copy(update={"target_precision": 1.0}))
    assert unreachable.min_confidence == 0.1
    assert any("no held-out threshold reached precision 1.00" in note for note in unreachable.notes)


def test_unset_the_threshold_is_the_curves_for_a_precision_of_nine_in_ten(trained: RankerModel) -> None:
    rows, hits, repos = _outcomes(4, 900)
    calibrated = replace(trained, confidence=fit_confidence(rows, hits, repos))
    expected = calibrated.confidence.threshold_for(0.9)
    assert expected is not None and expected != 0.5
    assert gate_threshold(calibrated, None, None) == (expected, "the default target precision 0.90")
    # Either setting still replaces the default: a fixed confidence, or another precision.
    assert gate_threshold(calibrated, 0.3, None) == (0.3, "CULPRIT_MIN_CONFIDENCE")
    assert gate_threshold(calibrated, None, 0.8) == (calibrated.confidence.threshold_for(0.8), "CULPRIT_TARGET_PRECISION 0.80")
    # Nothing to read the precision from: the fixed 0.5 stands in, and says why.
    assert gate_threshold(None, None, None) == (0.5, "the fallback threshold 0.50 (no held-out threshold reached precision 0.90)")
    unreachable = replace(calibrated, confidence=replace(calibrated.confidence, curve=[]))
    assert gate_threshold(unreachable, None, None)[0] == 0.5


def test_the_digest_and_stats_count_sure_answers_at_the_threshold_the_bot_answers_with(
    trained: RankerModel, data_dir, database_url: str  # noqa: ANN001
) -> None:
    rows, hits, repos = _outcomes(4, 900)
    calibrated = replace(trained, confidence=fit_confidence(rows, hits, repos))
    save_model(calibrated, data_dir / "models" / "ranker.model")
    settings = Settings(data_dir=data_dir, database_url=database_url)
    assert answer_threshold(settings) == load_resources(settings).min_confidence == calibrated.confidence.threshold_for(0.9)
    assert answer_threshold(settings.model_copy(update={"min_confidence": 0.2})) == 0.2
