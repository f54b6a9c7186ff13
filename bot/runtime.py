"""What the listeners share: settings, the channel directory, and the pool that runs investigations.

Bolt's listener threads only ack, post and wait; the CPU-heavy work (RCA,
agent) runs in a separate, smaller pool sized to the machine, so a burst of
``/rca`` commands never delays the next ack, and every wait has a time-out so
a slow database or model produces a clear message instead of silence.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import structlog

from bot.channels import ChannelDirectory
from bot.guards import RateLimiter, claim_queue
from bot.metrics import INVESTIGATIONS_STOPPED
from bot.reply_queue import ReplyQueue
from graph.agent import AgentReply, answer_question
from graph.agent_tools import AgentContext
from knowledge.config import Settings
from knowledge.db import RETRY_DELAYS_S
from tools.rca.answers import IncidentQuery, RcaAnswer
from tools.rca.deadline import Deadline, DeadlinePassed, set_deadline
from tools.rca.resources import RcaResources, load_resources

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

T = TypeVar("T")
log = structlog.get_logger(__name__)

Investigate = Callable[[IncidentQuery], RcaAnswer]
Ask = Callable[[str, AgentContext], AgentReply]

DEFAULT_ANSWER_TIMEOUT_S = 60.0
RERUNS_PER_MINUTE = 2  # per responder and incident: each re-run is a whole investigation
RESOURCES_TTL_S = 600.0
CHANNEL_STARTS = 50  # new incident channels starting at once: a large outage's burst of channels, not a flood
CHANNEL_START_RUNNERS = 4  # each mostly waits for the database to answer again
# Investigations handed to the pool and not over yet: running, waiting for a worker, or timed out and not yet
# skipped by one. Every reply's and webhook's at once, with room to spare; a bound only for stuck workers.
INVESTIGATIONS_WAITING = 200


class AnswerTimedOut(Exception):
    """The investigation did not finish in time; it stops at its next stage and its answer is not posted."""


@dataclass
class BotRuntime:
    settings: Settings
    channels: ChannelDirectory
    limiter: RateLimiter
    investigate: Investigate
    ask: Ask
    workers: ThreadPoolExecutor
    answer_timeout_s: float = DEFAULT_ANSWER_TIMEOUT_S
    replies: ReplyQueue = field(default_factory=ReplyQueue)
    reruns: RateLimiter = field(default_factory=lambda: RateLimiter(RERUNS_PER_MINUTE))
    # Listener work that has no sender to retry it (a new incident channel) tries again after these while
    # the database is unreachable; waits end early once ``stopping`` is set (SIGTERM).
    database_retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S
    stopping: threading.Event = field(default_factory=threading.Event)
    # Where a new incident channel's start (and those waits) runs, so it never holds a Bolt listener thread.
    channel_starts: ReplyQueue = field(default_factory=lambda: ReplyQueue(CHANNEL_STARTS, CHANNEL_START_RUNNERS, "channel-start"))
    # Where the guards check a delivery is not a retry (``bot.guards``).
    claims: ReplyQueue = field(default_factory=claim_queue)
    # A place per investigation in ``workers``, given back once a worker has run or skipped it.
    backlog: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(INVESTIGATIONS_WAITING)
    )

    @property
    def database_url(self) -> str:
        return self.settings.resolved_database_url

    def wiki(self) -> Collection:
        """The wiki where the settings keep it, opened only when a question needs it."""
        from knowledge.wiki.store import configured_wiki

        return configured_wiki(self.settings)

    def within_time_limit(self, work: Callable[..., T], *args: object) -> T:
        """Run ``work`` in the investigation pool and wait at most ``answer_timeout_s``.

        It runs in a copy of the caller's context, so its log lines keep the
        incident id, under a ``Deadline`` the RCA checks between stages: once
        this wait gives up, the investigation stops at its next stage and frees
        its worker for the next responder; one still waiting for a worker
        stops as it gets one.

        At most ``INVESTIGATIONS_WAITING`` are in the pool at once: a timed-out
        investigation stays in the pool's queue until a worker takes it, and
        with every worker stuck (a database hung mid-query) each one asked
        for added one more, without end. Past the bound it times out at once.
        """
        if not self.backlog.acquire(blocking=False):
            log.warning("investigation not queued: the workers are stuck and the queue is full",
                        waiting=INVESTIGATIONS_WAITING)
            raise AnswerTimedOut(f"{INVESTIGATIONS_WAITING} investigations already wait for a worker")
        deadline = Deadline(self.answer_timeout_s)
        context = contextvars.copy_context()
        context.run(set_deadline, deadline)
        try:
            future = self.workers.submit(context.run, self._in_turn, deadline, work, *args)
        except BaseException:  # the pool is shut down: the place was never taken
            self.backlog.release()
            raise
        try:
            return future.result(timeout=self.answer_timeout_s)
        except (TimeoutError, DeadlinePassed):  # the work may reach a stage past its deadline first
            deadline.expire()
            future.add_done_callback(_count_stop)
            raise AnswerTimedOut(f"no answer after {self.answer_timeout_s:g} s") from None

    def _in_turn(self, deadline: Deadline, work: Callable[..., T], *args: object) -> T:
        """``work``, unless its deadline passed while it waited for a worker; its place is given back either way."""
        try:
            if deadline.passed:
                raise DeadlinePassed("queued")
            return work(*args)
        finally:
            self.backlog.release()


def _count_stop(future: Future[object]) -> None:
    """Count a timed-out investigation once its worker is free, by where it stopped (``queued``: never started)."""
    error = future.exception()
    if isinstance(error, DeadlinePassed):
        INVESTIGATIONS_STOPPED.labels(stage=error.stage.split(" round ")[0]).inc()
        log.info("timed-out investigation stopped", stage=error.stage)


class CachedResources:
    """The ranker, change embeddings and ownership, loaded once and refreshed every few minutes.

    Loading them costs seconds; a replica keeps them between requests and
    picks up ingested ownership after ``ttl_s``. The promoted model version is
    checked before every use (one small query), so a promotion or rollback on
    any replica reaches this one at its next answer, without a restart.
    """

    def __init__(self, settings: Settings, ttl_s: float = RESOURCES_TTL_S) -> None:
        self._settings = settings
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._resources: RcaResources | None = None
        self._loaded_at = 0.0
        self.model_version: int | None = None

    def get(self) -> RcaResources:
        from tools.rca.retrain.registry import serving_model

        serving = serving_model(self._settings.resolved_database_url, data_dir=self._settings.data_dir)
        with self._lock:
            stale = self._resources is None or time.monotonic() - self._loaded_at > self._ttl_s
            if stale or serving.version != self.model_version:
                self._resources = load_resources(self._settings, serving)
                self._loaded_at = time.monotonic()
                self.model_version = serving.version
            return self._resources


class RcaInvestigator:
    """The RCA pipeline on the configured store, with the LLM judge when configured.

    Answers are persisted so each suggestion has an id the feedback buttons carry.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._cache = CachedResources(settings)
        self.model_version: int | None = None  # the promoted version the latest answer was ranked with

    def __call__(self, query: IncidentQuery) -> RcaAnswer:
        from graph.llm import make_judge
        from graph.rca_graph import run_rca
        from tools.rca.judges.local import LocalJudge

        resources = self._cache.get()
        self.model_version = self._cache.model_version
        judge = make_judge(self._settings, LocalJudge(resources.model))
        return run_rca(
            query, database_url=self._settings.resolved_database_url, persist=True, judge=judge, resources=resources
        )

    def warm_up(self) -> None:
        """Load the models before the first responder asks, instead of making them wait for it."""
        from knowledge.embeddings import embed

        self._cache.get()
        embed(["warm up"])


def default_ask(settings: Settings) -> Ask:
    """The mention agent; its RCA tool is the context's, which shares the replica's cached models and judge."""

    def ask(question: str, context: AgentContext) -> AgentReply:
        return answer_question(question, context, settings)

    return ask


def investigation_pool() -> ThreadPoolExecutor:
    """One worker per core (at least two): investigations are CPU-bound."""
    return ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="culprit-rca")
