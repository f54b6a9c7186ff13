"""Training sees each past case only as it was known when it started."""

from __future__ import annotations

import pytest

from tools.rca.history import training
from tools.rca.history.cases import History
from tools.rca.history.training import (
    build_examples,
    cross_fitted_rows,
    fit_ranker,
    maps_known_at_each_case,
    time_folds,
)


def test_each_training_case_gets_a_component_map_from_commits_before_it(history: History) -> None:
    maps = maps_known_at_each_case(history, history.cases, every=5)

    assert set(maps) == {case.case_id for case in history.cases}
    learned = []
    for case in history.cases:
        known = maps[case.case_id]
        before = [commit for commit in history.commits.values() if commit.landed_time.timestamp() < known.learned_until]
        assert known.learned_until <= case.incident.time
        assert known.n_commits == len(before)
        learned.append(known.n_commits)
    assert learned == sorted(learned) and learned[0] < learned[-1]
    # Cases share a map only within a snapshot of five.
    assert len({id(known) for known in maps.values()}) == -(-len(history.cases) // 5)



def test_every_calibration_row_comes_from_a_ranker_that_did_not_see_its_case(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = sorted(history.cases, key=lambda case: case.incident.time)
    maps = maps_known_at_each_case(history, cases)
    examples = build_examples(history, cases, maps, None) + build_examples(history, cases, maps, None, symptom=True)
    folds = time_folds(cases, folds=3) * 2
    trained_on: list[set[int]] = []

    def recording_fit(chosen):  # noqa: ANN001, ANN202
        trained_on.append({id(example) for example in chosen})
        return fit_ranker(chosen)

    monkeypatch.setattr(training, "fit_ranker", recording_fit)
    rows, hits, repos = cross_fitted_rows(examples, folds, [case.repo for case in cases] * 2)

    assert len(rows) == len(hits) == len(repos) == len(examples)  # every case, written and symptom-only
    assert len(trained_on) == 3
    for fold, seen in enumerate(trained_on):
        scored = {id(example) for example, other in zip(examples, folds, strict=True) if other == fold}
        assert scored and not scored & seen and len(seen) == len(examples) - len(scored)
    # Folds are consecutive periods of the history, not cases dealt round them.
    assert folds[: len(cases)] == sorted(folds[: len(cases)]) and set(folds) == {0, 1, 2}
