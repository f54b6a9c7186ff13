"""The Bolt app: one Web API client, the guards, the listeners, and what they share."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.channels import ChannelDirectory
from bot.guards import RateLimiter, install_guards, refuse_misshapen
from bot.listeners import register_listeners
from bot.reply_queue import ReplyQueue
from bot.runtime import (
    DEFAULT_ANSWER_TIMEOUT_S,
    Ask,
    BotRuntime,
    Investigate,
    default_ask,
    RcaInvestigator,
    investigation_pool,
)
from knowledge.config import Settings
from knowledge.db import RETRY_DELAYS_S
from knowledge.errors import CulpritError

log = structlog.get_logger(__name__)

LISTENER_THREADS = 64
# How long a stopping replica keeps answering what it acked: within Kubernetes' default 30 s grace period.
SHUTDOWN_GRACE_S = 20.0


RATE_LIMIT_RETRIES = 3  # Slack's Retry-After is a few seconds: an answer three waits late still helps
MAX_RETRY_AFTER_S = 30
"""Longest Retry-After a rate-limited Web API call waits out before it is sent again; a longer one (or one
that is not whole seconds) fails the call at once as rate limited, and the outbox sends the answer later."""


def web_client(settings: Settings) -> WebClient:
    """The Web API client; ``CULPRIT_SLACK_API_URL`` points it elsewhere (tests, proxies).

    During an incident a busy workspace rate-limits ``chat.postMessage``; a call
    answered 429 waits the Retry-After Slack gives (up to ``MAX_RETRY_AFTER_S``) and is sent again, so the
    responder is not left with only "Investigating...". slack_sdk joins method
    names onto the base URL with ``urljoin``, so the base needs its trailing slash.
    """
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    base_url = settings.slack_api_url.rstrip("/") + "/" if settings.slack_api_url else WebClient.BASE_URL
    client = WebClient(token=token, base_url=base_url)
    client.retry_handlers.append(_ShortRateLimitWaits(max_retry_count=RATE_LIMIT_RETRIES))
    return client


class _ShortRateLimitWaits(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler, for a Retry-After of whole seconds up to ``MAX_RETRY_AFTER_S`` only: its own
    sleeps whatever a 429 says (a day, a year), so a sick Slack or a proxy at CULPRIT_SLACK_API_URL would hold
    a listener or the digest job as long as it liked, and fails with a bare ValueError on an HTTP date."""

    def _can_retry(
        self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:  # fmt: skip
        if response is None or not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        said = [values for name, values in response.headers.items() if name.lower() == "retry-after"]
        if not said:  # slack_sdk then waits a second or two
            return True
        value = str(said[0][0] if isinstance(said[0], list) else said[0]).strip()
        return value.isascii() and value.isdigit() and int(value) <= MAX_RETRY_AFTER_S


def create_app(
    settings: Settings,
    *,
    investigate: Investigate | None = None,
    ask: Ask | None = None,
    answer_timeout_s: float = DEFAULT_ANSWER_TIMEOUT_S,
    replies: ReplyQueue | None = None,
    warm_up: bool = False,
    database_retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S,
) -> App:
    """A ready Bolt app; constructing it calls ``auth.test``, so a bad token fails here, at start-up.

    ``warm_up`` loads the RCA models in the background right away (``culprit serve`` does).
    ``database_retry_delays_s``: how long a new incident channel's listener waits before each new
    try while the database is unreachable.
    """
    if not settings.slack_bot_token:
        raise CulpritError("SLACK_BOT_TOKEN is not set; export the bot token (xoxb-...) from your Slack app")
    client = web_client(settings)
    app = _CheckedApp(
        client=client,  # carries the token and the API base URL
        signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "",
        # Listener threads mostly wait on investigations and Slack; many of them keep acks fast.
        listener_executor=ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="slack-listener"),
        ignoring_self_events_enabled=False,  # bot.guards drops our own events, and counts them
    )
    channels = ChannelDirectory(client)
    investigator = None
    if investigate is None:
        investigator = RcaInvestigator(settings)
        investigate = investigator
    runtime = BotRuntime(
        settings=settings,
        channels=channels,
        limiter=RateLimiter(settings.user_rate_limit_per_minute),
        investigate=investigate,
        ask=ask or default_ask(settings),
        workers=investigation_pool(),
        answer_timeout_s=answer_timeout_s,
        replies=replies or ReplyQueue(),
        database_retry_delays_s=database_retry_delays_s,
    )

    def share_runtime(context: BoltContext, next: Any) -> None:
        context["culprit"] = runtime
        next()

    app.middleware(share_runtime)
    app.culprit_replies = runtime.replies  # type: ignore[attr-defined]  # read by finish_acked_replies
    app.culprit_runtime = runtime  # type: ignore[attr-defined]  # read by runtime_of
    install_guards(app, settings, channels, runtime.limiter, runtime.claims)
    register_listeners(app)
    if warm_up and investigator is not None:
        runtime.workers.submit(investigator.warm_up)
    return app


class _CheckedApp(App):
    """Bolt's app, refusing a body whose fields are not the types Slack sends before Bolt reads any of them.

    Over HTTP and over Socket Mode alike: both hand each request to ``dispatch``.
    """

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        return refuse_misshapen(req.body) or super().dispatch(req)


def runtime_of(app: App) -> BotRuntime:
    """What the listeners share, for HTTP routes outside Bolt that start investigations (``bot.incident_webhooks``)."""
    return app.culprit_runtime  # type: ignore[attr-defined, no-any-return]


def finish_acked_replies(app: App, grace_s: float = SHUTDOWN_GRACE_S) -> None:
    """Wait for Bolt's listener threads, then for the replies they queued, for ``grace_s`` in all: a stopping
    replica answers what it acked (``create_server`` calls this on SIGTERM). New incident channels waiting to
    try the database again stop waiting: each makes its last try at once, before the replies are drained
    (a start queues its reply). What has not started when the grace runs out is turned away: the responder
    is asked to ask again (``bot.reply_queue``), so a hung database cannot hold the stop for minutes. A
    listener thread still running then (a vote waiting on the hung database) is given up with a log line."""
    runtime = runtime_of(app)
    deadline = time.monotonic() + grace_s
    runtime.stopping.set()
    _finish_listeners(app.listener_runner.listener_executor, grace_s)
    runtime.claims.drain(0)  # no request waits for a claim any more: those queued are dropped, its threads end
    runtime.channel_starts.drain(max(0.0, deadline - time.monotonic()))
    app.culprit_replies.drain(max(0.0, deadline - time.monotonic()))  # type: ignore[attr-defined]


def _finish_listeners(listeners: ThreadPoolExecutor, grace_s: float) -> None:
    """Let Bolt's listener threads finish for at most ``grace_s``, then drop the listener runs not started.

    ``shutdown(wait=True)`` has no time limit, and a listener that reads the database in its own thread
    (a vote, a confirmation) waits as long as a hung database does: the wait runs in a thread of its own,
    given up when the grace runs out. What is still running then dies with the process.
    """
    finishing = threading.Thread(target=listeners.shutdown, name="slack-listeners-finishing", daemon=True)
    finishing.start()
    finishing.join(grace_s)
    if finishing.is_alive():
        listeners.shutdown(wait=False, cancel_futures=True)
        log.error("slack listeners still running when the shutdown grace ran out: given up", grace_s=grace_s)
