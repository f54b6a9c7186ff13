"""Training sees each past case only as it was known when it started."""

from __future__ import annotations

import numpy as np

from tools.history_cases import History, case_candidates, case_query
from tools.local_judge import RankerModel
from tools.ranker_training import RANKER_SEEDS, maps_known_at_each_case
from tools.retrieval import retrieve
from tools.signals import SignalContext


def test_each_training_case_gets_a_component_map_from_commits_before_it(history: History) -> None:
    maps = maps_known_at_each_case(history, history.cases, every=5)

    assert set(maps) == {case.case_id for case in history.cases}
    learned = []
    for case in history.cases:
        known = maps[case.case_id]
        before = [commit for commit in history.commits.values() if commit.landed_time < known.learned_until]
        assert known.learned_until <= case.incident.time
        assert known.n_commits == len(before)
        learned.append(known.n_commits)
    assert learned == sorted(learned) and learned[0] < learned[-1]
    # Cases share a map only within a snapshot of five.
    assert len({id(known) for known in maps.values()}) == -(-len(history.cases) // 5)


def test_the_judge_averages_rankers_that_differ_only_in_their_seed(history: History, trained: RankerModel) -> None:
    case = history.cases[-1]
    kept = retrieve(case_query(case), case_candidates(case, history.commits), SignalContext()).kept
    rows = np.array([[change.features[name] for name in trained.feature_names] for change in kept])
    members = trained.ranker.members

    assert len(members) == RANKER_SEEDS
    each = [member.predict(rows) for member in members]
    assert any(not np.allclose(each[0], other) for other in each[1:])  # the seeds do differ
    assert np.allclose(trained.score(kept), np.mean(each, axis=0))
