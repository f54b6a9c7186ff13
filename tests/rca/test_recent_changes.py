"""What changed in a service lately, over a long window of a busy repository."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from knowledge.changes import Change
from knowledge.db import migrate
from knowledge.ingest.change_store import store_changes
from knowledge.ingest.progress import Silent
from tests.changes import change_record
from tools.rca.recent_changes import recent_changes

NOW = datetime(2025, 3, 20, 10, tzinfo=UTC)


def test_a_year_of_other_services_changes_is_not_loaded_to_list_a_services_twenty(database_url: str) -> None:
    migrate(database_url)
    search = [change_record(f"s{n:04d}", f"search change {n}", NOW - timedelta(hours=n + 1), ["services/search/rank.py"],
                            services=("search",)) for n in range(600)]  # fmt: skip
    payments = [change_record(f"p{n:02d}", f"payments change {n}", NOW - timedelta(hours=2 * n + 1.5), ["services/payments/api.py"],
                              services=("payments",)) for n in range(30)]  # fmt: skip
    store_changes(database_url, search + payments, Silent())
    loaded: list[str] = []

    def count(change: Change, _context: object) -> None:
        loaded.append(change.id)

    event.listen(Change, "load", count)
    try:
        listed = recent_changes("payments", until=NOW, hours=366 * 24, database_url=database_url)
    finally:
        event.remove(Change, "load", count)
    assert [change.id for change in listed] == [f"p{n:02d}" for n in range(20)]
    assert sorted(loaded) == sorted(change.id for change in listed)
