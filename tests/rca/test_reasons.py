"""Reasons come from the ranker's own contributions: the deciding evidence leads, and nothing shown contradicts the signals."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from graph.rca_graph import rca_graph, replay_incident
from knowledge.ownership import OwnershipRule
from knowledge.services import Service
from tests.changes import change_record
from tools.rca.answers import CandidateChange, IncidentQuery
from tools.rca.confidence import ConfidenceModel
from tools.rca.explain import FAMILIES, FAMILY_OF, QUERY_SIGNALS, family_contributions
from tools.rca.history.cases import History, case_candidates, case_query
from tools.rca.judges.local import LocalJudge, RankerModel
from tools.rca.resources import RcaResources
from tools.rca.signals.features import FEATURE_NAMES
from tools.rca.signals.ownership import OwnershipContext

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_every_signal_belongs_to_one_family_or_to_the_query() -> None:
    assert set(FAMILY_OF) | set(QUERY_SIGNALS) == set(FEATURE_NAMES)
    assert sum(len(names) for names in FAMILIES.values()) == len(FAMILY_OF)


def _owner_decides_model() -> RankerModel:
    """A LightGBM ranker taught that only the owner match tells the culprit (every other signal is noise)."""
    from lightgbm import LGBMRanker

    rng = np.random.default_rng(7)
    groups, rows, labels = 60, [], []
    for _ in range(groups):
        block = rng.random((20, len(FEATURE_NAMES)))
        owner = FEATURE_NAMES.index("owner_match")
        block[:, owner] = 0.0
        culprit = rng.integers(20)
        block[culprit, owner] = 1.0
        rows.append(block)
        labels.extend(int(i == culprit) for i in range(20))
    ranker = LGBMRanker(objective="lambdarank", n_estimators=30, num_leaves=4, min_child_samples=5, verbose=-1)
    ranker.fit(np.vstack(rows), np.array(labels), group=[20] * groups)
    return RankerModel(
        ranker=ranker.booster_, feature_names=FEATURE_NAMES, component_maps={},
        confidence=ConfidenceModel(model=None, prior=0.5), trained_until=0.0, n_cases=groups,
    )


def _final_state(query: IncidentQuery, candidates: list, resources: RcaResources) -> dict:  # type: ignore[type-arg]
    return rca_graph().invoke({
        "query": query, "resources": resources, "judge": LocalJudge(resources.model),
        "candidates": candidates, "persist": False,
    })


def test_when_ownership_decides_the_first_reason_names_it() -> None:
    ownership = OwnershipContext(
        rules=[
            OwnershipRule(source="CODEOWNERS", position=0, pattern="*", owners=["@core"], section=""),
            OwnershipRule(source="CODEOWNERS", position=1, pattern="/lib/pay/", owners=["@payments"], section=""),
        ],
        services=[Service(name="checkout", owner="@payments", path_globs=["app/checkout/*"], depends_on=[])],
    )
    rng = random.Random(1)
    candidates = [
        change_record(f"c{i:03d}", f"rework module {i}", NOW - timedelta(hours=rng.randint(1, 300)),
                      [f"lib/mod{i}/main.c"], added=rng.randint(1, 400))
        for i in range(40)
    ]
    owned = change_record("owned01", "tidy up", NOW - timedelta(hours=150), ["lib/pay/ledger.c"], added=12)
    candidates.insert(17, owned)
    query = IncidentQuery(text="Customers cannot finish buying", started_at=NOW, service="checkout")
    resources = RcaResources(model=_owner_decides_model(), ownership=ownership, min_confidence=0.0)
    answer = _final_state(query, candidates, resources)["answer"]
    first = answer.suggestions[0]
    assert first.change_id == "owned01"
    assert first.evidence.reasons[0].family == "ownership and dependency path"
    assert "@payments" in first.evidence.sentences[0]
    assert answer.why_first.startswith("#1 ranks above #2 mostly on ownership and dependency path")


@pytest.mark.parametrize("symptom", [False, True])
def test_no_reason_shown_contradicts_the_signals_the_ranker_used(
    history: History, trained: RankerModel, symptom: bool
) -> None:
    checked = 0
    for case in history.cases[-6:]:
        state = _final_state(case_query(case, symptom), case_candidates(case, history.commits),
                             RcaResources(model=trained, min_confidence=0.0))
        kept: list[CandidateChange] = state["retrieved"].kept
        by_id = {candidate.change_id: candidate for candidate in kept}
        parts = dict(zip(by_id, family_contributions(trained, kept), strict=True))
        for suggestion in state["answer"].suggestions:
            features = by_id[suggestion.change_id].features
            reasons = suggestion.evidence.reasons
            assert [r.contribution for r in reasons] == sorted((r.contribution for r in reasons), reverse=True)
            for reason in reasons:
                checked += 1
                assert reason.contribution > 0
                assert reason.contribution == pytest.approx(parts[suggestion.change_id][reason.family], abs=1e-4)
                _assert_facts_agree(reason.family, reason.sentence, features)
            helped = [family for family, value in parts[suggestion.change_id].items() if value > 0]
            assert {reason.family for reason in reasons} <= set(helped)
    assert checked > 20


def _assert_facts_agree(family: str, sentence: str, features: dict[str, float]) -> None:
    """The fact a reason states is one the ranker's signal for that family saw."""
    if family == "words":
        assert features["bm25"] > 0 or features["identifier_hits"] > 0 or features["embedding"] > 0, sentence
    elif family == "component map":
        assert features["component"] > 0, sentence
    elif family == "similar changes":
        assert features["similar_changes_votes"] > 0, sentence
    elif family == "past incidents":
        assert features["similar_incidents"] > 0 or features["place_broke_before"] > 0, sentence
    elif family == "ownership and dependency path":
        assert features["owner_match"] > 0 or features["service_distance"] < 9, sentence
    elif family == "timing":
        n = round(math.expm1(features["log_candidates"]))
        older = round((1 - features["recency_rank"]) * (n - 1))
        assert (f"newer than {older} of the {n} changes" in sentence) or (older == n - 1 and "the newest of" in sentence)


def test_sums_of_family_contributions_are_the_scores_relative_to_the_window(
    history: History, trained: RankerModel
) -> None:
    case = history.cases[-1]
    state = _final_state(case_query(case), case_candidates(case, history.commits),
                         RcaResources(model=trained, min_confidence=0.0))
    kept = state["retrieved"].kept
    totals = np.array([sum(row.values()) for row in family_contributions(trained, kept)])
    query_part = trained.contributions(kept)[:, [trained.feature_names.index(n) for n in QUERY_SIGNALS]].sum(axis=1)
    scores = trained.score(kept)
    centred = scores - scores.mean() - (query_part - query_part.mean())
    assert np.allclose(totals, centred, atol=1e-6)


def test_timing_counts_the_changes_of_the_whole_window_when_it_was_cut_to_its_best(trained: RankerModel) -> None:
    # 1,200 changes, 5 minutes apart: the retriever ranks recency among the 800 it kept, not the window.
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    window = [
        change_record(f"c{n:04d}", "http upload hang fix" if n % 97 == 0 else f"misc change {n}", now - timedelta(minutes=5 * n + 1),
                      ["lib/http.c" if n % 97 == 0 else f"misc/{n}.py"])
        for n in range(1200)
    ]  # fmt: skip
    answer, _kept = replay_incident(IncidentQuery(text="http upload hang", started_at=now), window,
                                    RcaResources(model=trained, min_confidence=0.0))
    said = {s.change_id: r.sentence for s in answer.suggestions for r in s.evidence.reasons if r.family == "timing"}
    assert said
    for change_id, sentence in said.items():
        assert f"newer than {1199 - int(change_id[1:])} of the 1200 changes in the window" in sentence, sentence
