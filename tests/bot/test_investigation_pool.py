"""The investigation pool with every worker stuck: what waits for a worker is bounded."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import REGISTRY

import bot.runtime
from bot.channels import ChannelDirectory
from bot.guards import RateLimiter
from bot.runtime import AnswerTimedOut, BotRuntime
from knowledge.config import Settings
from tests.waiting import wait_until


def _stopped_queued() -> float:
    return REGISTRY.get_sample_value("culprit_investigations_stopped_total", {"stage": "queued"}) or 0.0


def test_with_every_worker_stuck_the_investigations_waiting_for_one_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A timed-out investigation was cancelled but stayed in the pool's queue until a worker took it: with every
    worker stuck (a database hung mid-query) each one asked for added one more, for as long as they stayed stuck."""
    monkeypatch.setattr(bot.runtime, "INVESTIGATIONS_WAITING", 3)
    stuck, ran = threading.Event(), []

    def hung() -> str:
        stuck.wait(timeout=60)  # a hang guard only: the test sets it
        return "late"

    def investigation(number: int) -> int:
        ran.append(number)
        return number

    stopped_before = _stopped_queued()
    with ThreadPoolExecutor(max_workers=1) as workers:
        runtime = BotRuntime(
            settings=Settings(), channels=ChannelDirectory(None), limiter=RateLimiter(10),  # type: ignore[arg-type]
            investigate=lambda query: None, ask=lambda question, context: None,  # type: ignore[arg-type,return-value]
            workers=workers, answer_timeout_s=0.5,
        )
        with pytest.raises(AnswerTimedOut, match="no answer after"):
            runtime.within_time_limit(hung)  # it holds the only worker
        for number in (1, 2):  # they wait for the worker, and time out there
            with pytest.raises(AnswerTimedOut, match="no answer after"):
                runtime.within_time_limit(investigation, number)
        with pytest.raises(AnswerTimedOut, match="3 investigations already wait for a worker"):
            runtime.within_time_limit(investigation, 3)  # not queued behind them
        stuck.set()
        wait_until(lambda: _stopped_queued() == stopped_before + 2, "the timed-out investigations were never skipped")
        assert runtime.within_time_limit(investigation, 4) == 4  # the places are back once a worker is free
    assert ran == [4], "an investigation that timed out waiting for a worker never started"
