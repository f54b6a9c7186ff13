"""Retrieval keeps the planted culprit; the trained judge finds it better than newest-first."""

from __future__ import annotations

import json
import math
import pickle
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression

from knowledge.errors import CulpritError
from knowledge.ingest.history_files import HistoryCase
from knowledge.model_files import ModelWriter
from tests.tripwire import booby_trapped_pickle
from tools.rca.answers import JudgedChange
from tools.rca.confidence import ConfidenceModel, calibrator, confidence_features, fit_confidence
from tools.rca.election import FINALISTS
from tools.rca.history.cases import History, case_candidates, case_query, culprits, symptom_only
from tools.rca.judges.local import FILE_FORMAT, FILE_KIND, LocalJudge, RankerModel, load_model, save_model
from tools.rca.retrieval import retrieve
from tools.rca.signals.past_incidents import PastIncidents
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
        newest_hits += bool(culprits(case) & {change.id for change in candidates[:5]})
    assert judged_hits >= newest_hits + 3
    assert judged_hits / len(_later_cases(history)) >= 0.8


def _judged(
    model: RankerModel, history: History, case: HistoryCase, symptom: bool
) -> tuple[np.ndarray, list[JudgedChange], float]:
    """What a model makes of a case with every signal it learned: the kept candidates'
    scores, its five suggestions and its confidence in them."""
    query = case_query(case, symptom)
    candidates = case_candidates(case, history.commits)
    index = model.similar_changes_in(case.repo)
    context = SignalContext(
        component_map=model.component_map(case.repo),
        past_incidents=model.past_incidents,
        similar_changes=index.around(query.full_text, candidates) if index is not None else None,
    )
    retrieved = retrieve(query, candidates, context)
    five = LocalJudge(model).rank(query, retrieved.kept, FINALISTS)
    return model.score(retrieved.kept), five, model.confidence.probability(five, retrieved.n_candidates)


def test_a_saved_model_ranks_and_gates_exactly_as_the_trained_one(
    tmp_path: Path, history: History, trained: RankerModel
) -> None:
    asked = [(case, symptom) for case in history.cases for symptom in (False, True)]
    fives = [(case, _judged(trained, history, case, symptom)[1]) for case, symptom in asked]
    # The synthetic history is too short for training to calibrate, and its fives nearly always
    # hold the culprit: calibrate here on whether the first suggestion is one.
    calibration = fit_confidence(
        [confidence_features(five, len(case.candidates)) for case, five in fives],
        [five[0].change_id in culprits(case) for case, five in fives],
    )
    assert calibration.model is not None
    calibrated = replace(trained, confidence=calibration)

    loaded = load_model(save_model(calibrated, tmp_path / "models" / "ranker.model"))

    assert (loaded.feature_names, loaded.n_cases, loaded.trained_until, loaded.repos, loaded.uses_embeddings) == (
        trained.feature_names, trained.n_cases, trained.trained_until, trained.repos, False
    )
    for case, symptom in asked:
        scores, five, confidence = _judged(calibrated, history, case, symptom)
        loaded_scores, loaded_five, loaded_confidence = _judged(loaded, history, case, symptom)
        assert np.array_equal(loaded_scores, scores)
        assert (loaded_five, loaded_confidence) == (five, confidence)


def test_an_old_pickled_model_is_refused_without_running_it(tmp_path: Path) -> None:
    proof, marker = tmp_path / "pickles-run-code", tmp_path / "ranker-was-unpickled"
    pickle.loads(booby_trapped_pickle(proof))
    assert proof.exists()
    old = tmp_path / "ranker.joblib"
    old.write_bytes(booby_trapped_pickle(marker))

    with pytest.raises(CulpritError, match="not a culprit model file.*retrain with `culprit train`"):
        load_model(old)
    # Where the default name changed, the leftover pickle is named instead of "no trained ranker".
    with pytest.raises(CulpritError, match="ranker.joblib is in an old format \\(pickle\\), not loaded; retrain with `culprit train`"):
        load_model(tmp_path / "ranker.model")
    assert not marker.exists()


def test_a_model_file_that_would_unpack_too_large_is_refused_before_unpacking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knowledge import model_files

    monkeypatch.setattr(model_files, "MAX_UNCOMPRESSED_BYTES", 1024 * 1024)
    path = tmp_path / "bomb.model"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ranker", b"\0" * (1024 * 1024 + 1))  # a few kB on disk
    with pytest.raises(CulpritError, match="would unpack to 1,048,577 bytes, over"):
        load_model(path)


def test_a_model_file_whose_parts_have_the_wrong_shape_is_refused(trained: RankerModel, tmp_path: Path) -> None:
    path = save_model(trained, tmp_path / "ranker.model")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["component_maps.json"] = b'{"acme/widget": {"word_counts": {}, "evil": 1}}'  # a field no map has
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(CulpritError, match="does not hold the model it claims .*TypeError.*retrain with `culprit train`"):
        load_model(path)


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (lambda index: replace(index, matrix=csr_matrix(np.ones((index.matrix.shape[0], 3)))), "words, its matrix has 3 columns"),
        (lambda index: replace(index, places=index.places[:2]), "rows for 2 places and"),
        (lambda index: replace(index, landed=index.landed[:2]), "and 2 landing times"),
        (lambda index: replace(index, landed=index.landed[::-1].copy()), "landing times are not finite and in order"),
    ],
    ids=["narrow-matrix", "fewer-places", "fewer-landing-times", "unordered-landing-times"],
)
def test_a_model_file_whose_similar_change_index_does_not_fit_together_is_refused(
    trained: RankerModel, tmp_path: Path, broken, reason: str  # noqa: ANN001
) -> None:
    # Each loaded, then failed every RCA on the repository (a matmul dimension error, an IndexError)
    # or looked up neighbours by the wrong times.
    repo, index = next(iter(trained.similar_changes.items()))
    path = save_model(replace(trained, similar_changes={repo: broken(index)}), tmp_path / "ranker.model")
    with pytest.raises(CulpritError, match=f"does not hold the model it claims .*similar-change index .*{reason}.*retrain with `culprit train`"):
        load_model(path)


def _with_map(model: RankerModel, **changes: object) -> RankerModel:
    repo, known = next(iter(model.component_maps.items()))
    return replace(model, component_maps={repo: replace(known, **changes)})


def _with_past_incident(model: RankerModel, **changes: object) -> RankerModel:
    first = model.past_incidents.incidents[0]
    return replace(model, past_incidents=PastIncidents([replace(first, **changes)]))


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (lambda model: _with_map(model, word_counts={"http": "3"}), "component map of .* whole-number counts"),
        (lambda model: _with_map(model, pair_counts={"http": ["lib/http.c"]}), "component map of .* whole-number counts"),
        (lambda model: _with_map(model, n_commits=1.5), "component map of .* whole-number counts"),
        (lambda model: _with_map(model, n_commits=1), "a number of commits no smaller than any of them"),
        (lambda model: _with_past_incident(model, started="yesterday"), "past incident 0 is not"),
        (lambda model: _with_past_incident(model, terms={"crash": 2.5}), "past incident 0 is not"),
        (lambda model: _with_past_incident(model, culprit_units=frozenset({3})), "past incident 0 is not"),
    ],
    ids=["text-count", "places-as-a-list", "fractional-commits", "fewer-commits-than-counted",
         "text-start", "fractional-terms", "numbered-places"],  # fmt: skip
)
def test_a_model_file_whose_maps_or_past_incidents_are_of_other_types_is_refused(
    trained: RankerModel, tmp_path: Path, broken, reason: str  # noqa: ANN001
) -> None:
    # Each loaded, then every RCA logged "signal failed" and went without the component or past-incident evidence.
    path = save_model(broken(trained), tmp_path / "ranker.model")
    with pytest.raises(CulpritError, match=f"does not hold the model it claims .*{reason}.*retrain with `culprit train`"):
        load_model(path)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"trained_until": "soon"}, "its training end 'soon' is not a time from 1970 to 9999"),
        ({"trained_until": math.inf}, "its training end 'inf' is not a time from 1970 to 9999"),
        ({"trained_until": 1e300}, "its training end '1e\\+300' is not a time from 1970 to 9999"),
        ({"n_cases": "many"}, "its case count 'many' is not a whole number"),
        ({"n_cases": -1}, "its case count '-1' is not a whole number"),
    ],
    ids=["text-end", "endless", "far-future", "text-count", "negative-count"],
)
def test_a_model_file_whose_training_end_or_case_count_is_no_number_is_refused(
    trained: RankerModel, tmp_path: Path, changes: dict, reason: str  # type: ignore[type-arg]
) -> None:
    # A text end loaded, then failed `culprit model retrain` with a TypeError (doctor said "ok"); an endless or
    # far-future one left no case newer than the champion's training, so every retrain was skipped.
    path = save_model(replace(trained, **changes), tmp_path / "ranker.model")
    with pytest.raises(CulpritError, match=f"does not hold the model it claims .*{reason}.*retrain with `culprit train`"):
        load_model(path)


def _calibration(columns: int, coefficient: float = 1.0) -> LogisticRegression:
    model = calibrator()
    model.fit(np.arange(40 * columns, dtype=float).reshape(40, columns) % 7, [0, 1] * 20)
    model.coef_[0, 0] = coefficient
    return model


@pytest.mark.parametrize(
    ("confidence", "reason"),
    [
        (ConfidenceModel(model=None, prior=1.5), "confidence prior 1.5 is not a probability"),
        (ConfidenceModel(model=_calibration(3), prior=0.5, method="score shape"), "needs 1 x 5 coefficients, it holds \\(1, 3\\)"),
        (ConfidenceModel(model=_calibration(5, float("nan")), prior=0.5, method="score shape"), "coefficient is not a finite number"),
    ],
    ids=["prior-over-one", "coefficients-of-another-method", "nan-coefficient"],
)
def test_a_model_file_whose_calibration_cannot_give_a_probability_is_refused(
    trained: RankerModel, tmp_path: Path, confidence: ConfidenceModel, reason: str
) -> None:
    path = save_model(replace(trained, confidence=confidence), tmp_path / "ranker.model")
    with pytest.raises(CulpritError, match=f"does not hold the model it claims .*{reason}.*retrain with `culprit train`"):
        load_model(path)


def test_a_model_file_of_another_layout_is_refused(tmp_path: Path) -> None:
    path = ModelWriter(FILE_KIND, FILE_FORMAT + 1).save(tmp_path / "ranker.model", {})
    with pytest.raises(CulpritError, match=f"version {FILE_FORMAT + 1}, not .* version {FILE_FORMAT}; retrain"):
        load_model(path)


@pytest.mark.parametrize("member", ["manifest.json", "component_maps.json"])
def test_a_model_file_with_json_nested_past_the_parser_is_refused(
    trained: RankerModel, tmp_path: Path, member: str
) -> None:
    path = save_model(trained, tmp_path / "ranker.model")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members[member] = b"[" * 200_000 + b"]" * 200_000  # 400 kB that json.loads recurses into
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(CulpritError, match=f"has a damaged {member} \\(JSON nested too deeply\\).*retrain with `culprit train`"):
        load_model(path)


def test_symptom_only_keeps_a_first_sentence_without_code() -> None:
    title, text = symptom_only(
        "BUG/MEDIUM: http: crash in h1_parse() on lib/http.c",
        "Uploads with chunked_encoding hang in Curl_http_done(). Second sentence is dropped.",
    )
    assert title == "crash in on"
    assert text == "Uploads with hang in"


def _patched(path: Path, local: dict[int, int], central: dict[int, int]) -> None:
    """Rewrite header fields (offset in the header: new 16-bit value) of every member, locally and centrally."""
    data = bytearray(path.read_bytes())
    for signature, fields in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        start = data.find(signature)
        while start != -1:
            for offset, value in fields.items():
                data[start + offset : start + offset + 2] = value.to_bytes(2, "little")
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("deflate", "is damaged \\(Error -3 while decompressing data"),
        ("method", "compressed with method 99, not stored or deflated"),
        ("encrypted", "has an encrypted member 'manifest.json'"),
    ],
)
def test_a_model_file_damaged_inside_its_zip_is_refused_with_the_reason(
    tmp_path: Path, damage: str, reason: str
) -> None:
    path = tmp_path / "ranker.model"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps({"format": "ranker", "words": ["checkout"] * 500}))
    if damage == "deflate":
        data = bytearray(path.read_bytes())
        data[45:55] = b"\xff" * 10  # inside the deflate stream, past the 30-byte header and the 13-byte name
        path.write_bytes(bytes(data))
    elif damage == "method":
        _patched(path, local={8: 99}, central={10: 99})
    else:
        _patched(path, local={6: 0x1}, central={8: 0x1})
    with pytest.raises(CulpritError, match=f"{reason}.*retrain with `culprit train`"):
        load_model(path)
