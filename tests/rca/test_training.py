"""Training sees each past case only as it was known when it started."""

from __future__ import annotations

from tools.rca.history.cases import History
from tools.rca.history.training import maps_known_at_each_case


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

