"""Retrieval keeps the planted culprit; the trained judge finds it better than newest-first."""

from __future__ import annotations

from tools.rca.history.cases import History, case_candidates, case_query, culprits, symptom_only
from tools.rca.judges.local import LocalJudge, RankerModel, load_model, save_model
from tools.rca.retrieval import retrieve
from tools.rca.signals.features import FEATURE_NAMES, SignalContext


def _later_cases(history: History):  # noqa: ANN202
    return history.cases[int(len(history.cases) * 0.7) :]


def test_retrieval_keeps_the_culprit_even_when_cutting_hard(history: History, trained: RankerModel) -> None:
    kept_count = 0
    for case in history.cases:
        candidates = case_candidates(case, history.commits)
        context = SignalContext(component_map=trained.component_map(case.repo))
        retrieved = retrieve(case_query(case), candidates, context, keep=30)
        assert len(retrieved.kept) == min(30, len(candidates))
        assert retrieved.n_candidates == len(candidates)
        assert set(retrieved.kept[0].features) == set(FEATURE_NAMES)
        kept_count += bool(culprits(case) & {change.change_id for change in retrieved.kept})
    assert kept_count == len(history.cases)


def test_trained_judge_beats_newest_first(history: History, trained: RankerModel) -> None:
    judge = LocalJudge(trained)
    judged_hits = newest_hits = 0
    for case in _later_cases(history):
        candidates = case_candidates(case, history.commits)
        query = case_query(case)
        retrieved = retrieve(query, candidates, SignalContext(component_map=trained.component_map(case.repo)))
        top = [choice.change_id for choice in judge.rank(query, retrieved.kept, 5)]
        judged_hits += bool(culprits(case) & set(top))
        newest_hits += bool(culprits(case) & {change.change_id for change in candidates[:5]})
    assert judged_hits >= newest_hits + 3
    assert judged_hits / len(_later_cases(history)) >= 0.8


def test_model_survives_a_round_trip_to_disk(tmp_path, trained: RankerModel) -> None:  # noqa: ANN001
    path = save_model(trained, tmp_path / "models" / "ranker.joblib")
    loaded = load_model(path)
    assert loaded.feature_names == trained.feature_names
    assert loaded.n_cases == trained.n_cases
    assert loaded.uses_embeddings is False


def test_symptom_only_keeps_a_first_sentence_without_code() -> None:
    title, text = symptom_only(
        "BUG/MEDIUM: http: crash in h1_parse() on lib/http.c",
        "Uploads with chunked_encoding hang in Curl_http_done(). Second sentence is dropped.",
    )
    assert title == "crash in on"
    assert text == "Uploads with hang in"
