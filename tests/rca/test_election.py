"""The election ranker: small batches, five winners each, concurrent, until five remain."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.changes import change_record
from tools.rca.answers import CandidateChange, IncidentQuery, JudgedChange
from tools.rca.election import elect

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


class RecordingJudge:
    """Scores a change by the number in its id; records every batch and the threads it ran on."""

    name = "recording"

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[int] = set()
        self.active = 0
        self.most_active = 0
        self.delay = delay
        self._lock = threading.Lock()

    def rank(self, incident: IncidentQuery, batch: Sequence[CandidateChange], keep: int) -> list[JudgedChange]:
        with self._lock:
            self.batches.append([change.change_id for change in batch])
            self.threads.add(threading.get_ident())
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        time.sleep(self.delay)
        with self._lock:
            self.active -= 1
        ranked = sorted(batch, key=lambda change: int(change.change_id.split("-")[1]), reverse=True)
        return [JudgedChange(change.change_id, float(change.change_id.split("-")[1]), self.name) for change in ranked[:keep]]


def changes(n: int) -> list[CandidateChange]:
    return [CandidateChange(change_record(f"c-{i}", f"change {i}", NOW - timedelta(hours=i))) for i in range(n)]


INCIDENT = IncidentQuery(text="checkout fails", started_at=NOW)


def test_never_more_than_twenty_per_call_and_the_best_five_win() -> None:
    judge = RecordingJudge()
    result = elect(INCIDENT, changes(300), judge, batch_size=20)
    assert max(len(batch) for batch in judge.batches) <= 20
    assert [choice.change_id for choice in result.winners] == [f"c-{i}" for i in (299, 298, 297, 296, 295)]
    # 300 -> 15 batches -> 75 -> 4 batches -> 20 -> 1 batch -> 5
    assert result.rounds == 3
    assert result.judge_calls == 15 + 4 + 1
    assert result.judges_used == ["recording"]


def test_final_scores_come_from_the_last_round() -> None:
    judge = RecordingJudge()
    result = elect(INCIDENT, changes(45), judge, batch_size=20)
    final_batch = judge.batches[-1]
    assert {choice.change_id for choice in result.winners} <= set(final_batch)
    assert len(final_batch) == 15  # three batches of 15, five winners each
    assert [choice.score for choice in result.winners] == sorted((choice.score for choice in result.winners), reverse=True)


def test_a_small_field_is_one_round_and_fewer_than_five_all_win() -> None:
    judge = RecordingJudge()
    assert len(elect(INCIDENT, changes(3), judge).winners) == 3
    assert judge.batches == [["c-0", "c-1", "c-2"]]
    assert elect(INCIDENT, [], judge).winners == []


def test_batches_of_a_round_are_judged_concurrently() -> None:
    judge = RecordingJudge(delay=0.2)
    elect(INCIDENT, changes(80), judge, batch_size=20, max_workers=4)
    # Two batches inside the judge at once is the proof; the speed-up is for benchmarks/rca_latency.py.
    assert judge.most_active >= 2
    assert len(judge.threads) >= 2


def test_invented_or_repeated_ids_are_dropped() -> None:
    class SloppyJudge:
        name = "sloppy"

        def rank(self, incident, batch, keep):  # noqa: ANN001, ANN201
            first = batch[0].change_id
            return [JudgedChange("made-up", 9.0, self.name), JudgedChange(first, 2.0, self.name),
                    JudgedChange(first, 1.0, self.name)]

    result = elect(INCIDENT, changes(10), SloppyJudge())
    assert [choice.change_id for choice in result.winners] == ["c-0"]


def test_batch_size_must_leave_room_to_shrink() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        elect(INCIDENT, changes(10), RecordingJudge(), batch_size=5)


def test_an_expired_deadline_stops_the_election_before_its_next_round() -> None:
    from tools.rca.deadline import Deadline, DeadlinePassed

    deadline = Deadline()

    class ExpiringJudge(RecordingJudge):
        def rank(self, incident: IncidentQuery, batch: Sequence[CandidateChange], keep: int) -> list[JudgedChange]:
            deadline.expire()  # whoever waited gave up while the first round ran
            return super().rank(incident, batch, keep)

    judge = ExpiringJudge()
    with pytest.raises(DeadlinePassed) as stopped:
        elect(INCIDENT, changes(300), judge, batch_size=20, deadline=deadline)
    assert stopped.value.stage == "election round 2"
    assert len(judge.batches) == 15  # the first round only


class UnsureJudge(RecordingJudge):
    """Scores as ``RecordingJudge`` but says NaN, infinity or minus infinity for the three best changes."""

    def rank(self, incident: IncidentQuery, batch: Sequence[CandidateChange], keep: int) -> list[JudgedChange]:
        broken = {"c-29": float("nan"), "c-28": float("inf"), "c-27": float("-inf")}
        return [replace(choice, score=broken.get(choice.change_id, choice.score)) for choice in super().rank(incident, batch, keep)]


def test_a_score_that_is_not_a_finite_number_is_no_ranking() -> None:
    result = elect(INCIDENT, changes(30), UnsureJudge(), batch_size=20)
    assert all(math.isfinite(choice.score) for choice in result.winners)
    assert not {"c-29", "c-28", "c-27"} & {choice.change_id for choice in result.winners}
    assert [choice.score for choice in result.winners] == sorted((choice.score for choice in result.winners), reverse=True)
