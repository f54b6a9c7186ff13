"""Past investigations point at the places that broke before, and never at the future."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from knowledge.changes import ChangeRecord
from tests.changes import change_record
from tools.rca.answers import IncidentQuery
from tools.rca.signals.component_map import learn_component_map
from tools.rca.signals.past_incidents import past_incident_signals, past_incidents_from

MAY = datetime(2024, 5, 1, tzinfo=UTC)


def _change(change_id: str, *paths: str) -> ChangeRecord:
    return change_record(change_id, f"touch {paths[0]}", MAY - timedelta(days=1), paths)


def test_a_similar_earlier_incident_points_at_its_culprits_files_and_a_later_one_does_not() -> None:
    commits = [("misc work", "", [f"src/module{index % 40}.c"]) for index in range(400)]
    component_map = learn_component_map(commits, MAY.timestamp())
    past = past_incidents_from(
        [
            ("acme/shop", (MAY - timedelta(days=30)).timestamp(), "checkout times out when the cart is empty",
             [["src/module7.c"]]),
            ("acme/shop", (MAY - timedelta(days=20)).timestamp(), "search results show stale prices",
             [["src/module9.c"]]),
            ("acme/shop", (MAY + timedelta(days=5)).timestamp(), "checkout times out for guests",
             [["src/module3.c"]]),
        ]
    )
    candidates = [_change("a", "src/module3.c"), _change("b", "src/module7.c"), _change("c", "src/module9.c")]
    query = IncidentQuery(text="checkout times out", started_at=MAY, repo="acme/shop")

    similar, broke_before = past_incident_signals(query, candidates, past, component_map)

    assert similar[1] > 0 and similar[1] > similar[2] >= 0
    assert similar[0] == 0 and broke_before[0] == 0  # the later incident is not known yet
    assert broke_before[1] > 0 and broke_before[2] > 0
    other_repo = IncidentQuery(text="checkout times out", started_at=MAY, repo="acme/other")
    assert not past_incident_signals(other_repo, candidates, past, component_map)[0].any()
