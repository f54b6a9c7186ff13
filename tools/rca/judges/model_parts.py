"""The learned pieces of the local judge as plain data, for its model file.

Component maps and past incidents are counts keyed by words and places (JSON);
a similar-changes index is its TF-IDF vocabulary and idf, its sparse matrix and
landing times (numpy) and the places each change touched (JSON); the confidence
calibration is a prior and a logistic model's coefficients. Each is rebuilt
into the same object training made, so it answers exactly as before.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import fields
from typing import Any

import numpy as np

from knowledge.model_files import ModelFile, ModelWriter
from tools.rca.confidence import CALIBRATIONS, ConfidenceModel, calibrator
from tools.rca.signals.component_map import ComponentMap
from tools.rca.signals.past_incidents import PastIncident, PastIncidents
from tools.rca.signals.similar_changes import SimilarChanges, index_vectorizer


def write_component_maps(writer: ModelWriter, maps: dict[str, ComponentMap]) -> None:
    writer.add_json(
        "component_maps",
        {repo: {field.name: getattr(known, field.name) for field in fields(known)} for repo, known in maps.items()},
    )


def read_component_maps(model_file: ModelFile) -> dict[str, ComponentMap]:
    """The maps as trained; counts that are not whole numbers by word and place are refused (ValueError).

    Such a map loaded, and every RCA then logged "signal failed" and went without its evidence."""
    saved = model_file.json("component_maps")
    if not isinstance(saved, dict):
        raise ValueError("the component maps are not a mapping by repository")
    return {repo: _checked_map(repo, ComponentMap(**known)) for repo, known in saved.items()}


def _checked_map(repo: str, known: ComponentMap) -> ComponentMap:
    counts = (known.word_counts, known.unit_counts)
    pairs = known.pair_counts
    if not (
        all(map(_is_counts, counts)) and isinstance(pairs, dict) and all(map(_is_counts, pairs.values()))
        and _is_count(known.n_commits) and _is_time(known.learned_until)
        and known.n_commits >= max((max(part.values(), default=0) for part in counts), default=0)
    ):  # fmt: skip
        raise ValueError(
            f"the component map of {repo!r} does not hold whole-number counts by word and place, "
            "and a number of commits no smaller than any of them"
        )
    return known


def write_past_incidents(writer: ModelWriter, past: PastIncidents | None) -> None:
    incidents = None if past is None else [
        {
            "repo": incident.repo,
            "started": incident.started,
            "terms": dict(incident.terms),
            "culprit_units": sorted(incident.culprit_units),
        }
        for incident in past.incidents
    ]
    writer.add_json("past_incidents", incidents)


def read_past_incidents(model_file: ModelFile) -> PastIncidents | None:
    """The past incidents as trained; rows of other types are refused (ValueError), as for the component maps."""
    incidents = model_file.json("past_incidents")
    if incidents is None:
        return None
    if not isinstance(incidents, list):
        raise ValueError("the past incidents are not a list")
    for position, row in enumerate(incidents):
        if not (
            isinstance(row, dict) and isinstance(row.get("repo"), str | None) and _is_time(row.get("started"))
            and _is_counts(row.get("terms")) and isinstance(row.get("culprit_units"), list)
            and all(isinstance(unit, str) for unit in row["culprit_units"])
        ):  # fmt: skip
            raise ValueError(
                f"past incident {position} is not a repository, a start time, word counts and the culprit's places"
            )
    return PastIncidents(
        [
            PastIncident(row["repo"], row["started"], Counter(row["terms"]), frozenset(row["culprit_units"]))
            for row in incidents
        ]
    )


LATEST_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z, the latest time a history file holds


def checked_training(manifest: dict[str, Any]) -> tuple[float, int]:
    """The manifest's training end (unix time) and case count, refused (ValueError) unless a time from 1970
    to 9999 and a whole number: the retrain splits its replay cases at the end (a string failed it with a
    TypeError, an infinite one skipped every retrain), and answers and ``culprit doctor`` print the count."""
    until, cases = manifest["trained_until"], manifest["n_cases"]
    if not (_is_time(until) and 0 <= until <= LATEST_TIME):
        raise ValueError(f"its training end {str(until)[:40]!r} is not a time from 1970 to 9999")
    if not _is_count(cases):
        raise ValueError(f"its case count {str(cases)[:40]!r} is not a whole number")
    return float(until), cases


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_counts(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(key, str) and _is_count(count) for key, count in value.items())


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def write_similar_changes(writer: ModelWriter, indexes: dict[str, SimilarChanges]) -> list[str]:
    """Each index under its position; returns the repositories in that order, for the manifest."""
    for position, index in enumerate(indexes.values()):
        name = f"similar_changes.{position}"
        writer.add_tfidf(f"{name}.vectorizer", index.vectorizer)
        writer.add_sparse_matrix(f"{name}.matrix", index.matrix)
        writer.add_array(f"{name}.landed", index.landed)
        writer.add_json(f"{name}.places", [sorted(places) for places in index.places])
        writer.add_json(f"{name}.base_rates", index.base_rates)
    return list(indexes)


def read_similar_changes(model_file: ModelFile, repos: list[str]) -> dict[str, SimilarChanges]:
    indexes = {}
    for position, repo in enumerate(repos):
        name = f"similar_changes.{position}"
        indexes[repo] = _fitting_together(SimilarChanges(
            vectorizer=model_file.tfidf(f"{name}.vectorizer", index_vectorizer()),
            matrix=model_file.sparse_matrix(f"{name}.matrix"),
            landed=model_file.array(f"{name}.landed"),
            places=[frozenset(places) for places in model_file.json(f"{name}.places")],
            base_rates=model_file.json(f"{name}.base_rates"),
        ), repo)  # fmt: skip
    return indexes


def _fitting_together(index: SimilarChanges, repo: str) -> SimilarChanges:
    """``index`` if its parts describe the same changes and words; else ValueError (refused like any
    damaged part). Parts that disagree loaded, then failed every RCA on the repository."""
    words, (rows, columns) = len(index.vectorizer.vocabulary_), index.matrix.shape
    if columns != words or rows != len(index.places) or rows != len(index.landed):
        raise ValueError(
            f"the similar-change index of {repo!r} has {words} words, its matrix has {columns} columns, "
            f"and {rows} rows for {len(index.places)} places and {len(index.landed)} landing times"
        )
    landed = index.landed
    if landed.ndim != 1 or landed.dtype.kind not in "fiu" or not np.isfinite(landed).all() or (np.diff(landed) < 0).any():
        raise ValueError(f"the similar-change index of {repo!r}: its landing times are not finite and in order")
    rates = index.base_rates
    if not isinstance(rates, dict) or not all(isinstance(rate, int | float) for rate in rates.values()):
        raise ValueError(f"the similar-change index of {repo!r}: its base rates are not numbers by place")
    return index


def write_confidence(writer: ModelWriter, confidence: ConfidenceModel) -> None:
    writer.add_json(
        "confidence",
        {
            "prior": confidence.prior,
            "calibrated": confidence.model is not None,
            "method": confidence.method,
            "loro_ece": confidence.loro_ece,
            "curve": confidence.curve,
        },
    )
    if confidence.model is not None:
        writer.add_logistic("confidence.calibration", confidence.model)


def read_confidence(model_file: ModelFile) -> ConfidenceModel:
    """The calibration as trained; one that could say a confidence outside [0, 1] (a prior of 1.5, a
    NaN coefficient) or fail every RCA (coefficients for other columns than its method's) is refused."""
    saved = model_file.json("confidence")
    method = saved["method"]
    if method not in CALIBRATIONS:
        raise ValueError(f"unknown confidence calibration {method!r}")
    prior = float(saved["prior"])
    if not 0.0 <= prior <= 1.0:
        raise ValueError(f"confidence prior {prior} is not a probability")
    model = model_file.logistic("confidence.calibration", calibrator()) if saved["calibrated"] else None
    if model is not None:
        columns = len(CALIBRATIONS[method][0])
        if model.coef_.shape != (1, columns) or model.intercept_.shape != (1,) or len(model.classes_) != 2:
            raise ValueError(f"the {method!r} calibration needs 1 x {columns} coefficients, it holds {model.coef_.shape}")
        if not (np.isfinite(model.coef_).all() and np.isfinite(model.intercept_).all()):
            raise ValueError("a confidence calibration coefficient is not a finite number")
    return ConfidenceModel(model=model, prior=prior, method=method, loro_ece=saved["loro_ece"], curve=saved["curve"])
