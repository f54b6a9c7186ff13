"""A monorepo-sized window: read once per process, then cut by cheap signals before the expensive ones."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from knowledge.changes import changes_landed_between
from knowledge.db import session_scope
from knowledge.ingest.change_store import store_changes
from knowledge.ingest.progress import Silent
from tests.changes import change_record
from tools.rca.store import window_changes
from tools.rca.answers import IncidentQuery
from tools.rca.retrieval import PREFILTER_KEEP, PREFILTER_NEWEST, prefilter, retrieve
from tools.rca.signals.features import SignalContext

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _window(n: int) -> list:  # type: ignore[type-arg]
    rng = random.Random(5)
    words = ["parser", "cache", "socket", "render", "queue", "ledger", "widget", "stream"]
    return [
        change_record(f"c{i:05d}", f"{rng.choice(words)}: tidy module {i}", NOW - timedelta(minutes=20 + 19 * i),
                      [f"src/{rng.choice(words)}/part{i % 50}.c"])
        for i in range(n)
    ]


def test_a_small_window_is_not_cut() -> None:
    window = _window(PREFILTER_KEEP)
    query = IncidentQuery(text="checkout broken", started_at=NOW)
    assert prefilter(query, window, SignalContext()) is window


def test_a_huge_window_keeps_the_named_change_and_the_newest_and_counts_every_candidate() -> None:
    window = _window(3 * PREFILTER_KEEP)
    culprit = change_record("culprit01", "payments: retry tokenizer on timeout", NOW - timedelta(days=9),
                            ["services/payments/tokenizer.py"])
    window.insert(1700, culprit)
    query = IncidentQuery(text="Card payments time out in the tokenizer", started_at=NOW)
    cut = prefilter(query, window, SignalContext())
    assert len(cut) == PREFILTER_KEEP
    assert culprit in cut
    newest = sorted(window, key=lambda change: change.landed_time, reverse=True)[:PREFILTER_NEWEST]
    assert set(change.id for change in newest) <= {change.id for change in cut}
    retrieved = retrieve(query, window, SignalContext(), keep=300)
    assert retrieved.n_candidates == len(window) and len(retrieved.kept) == 300
    assert retrieved.kept[0].change_id == "culprit01"
    assert retrieved.kept[0].features["log_candidates"] == math.log1p(len(window))


def test_the_window_is_read_whole_once_and_still_sees_new_changes(database_url: str, tmp_path) -> None:  # noqa: ANN001
    first = [change_record(f"w{i}", f"change {i}", NOW - timedelta(hours=i + 1), [f"src/m{i}.c"], body="b")
             for i in range(5)]
    store_changes(database_url, first, Silent())
    start = NOW - timedelta(days=14)
    read = window_changes(database_url, start, NOW)
    with session_scope(database_url) as session:
        assert read == [change.record() for change in changes_landed_between(session, start, NOW)]
    store_changes(database_url, [change_record("w9", "late change", NOW - timedelta(minutes=5), ["src/late.c"])], Silent())
    again = window_changes(database_url, start, NOW)
    assert [change.id for change in again] == ["w9", "w0", "w1", "w2", "w3", "w4"]
    assert window_changes(database_url, start, NOW - timedelta(hours=3)) == read[3:]  # [start, end)

    other = f"sqlite:///{tmp_path / 'other.db'}"
    from knowledge.db import migrate

    migrate(other)
    store_changes(other, [change_record("w0", "same id, another store", NOW - timedelta(hours=1), ["x.c"])], Silent())
    assert [change.title for change in window_changes(other, start, NOW)] == ["same id, another store"]
