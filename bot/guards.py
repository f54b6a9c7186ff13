"""What every Slack request passes before a listener sees it.

Bolt has already verified the signature. These guards refuse a request whose
fields are not the types Slack sends (:mod:`bot.slack_shapes`), drop bots' events
(ours included), enforce the channel and user allow-lists, answer each
delivery once (Slack retries an event it thinks was lost, with the same
``event_id`` and an ``X-Slack-Retry-Num`` header), and keep one responder from
flooding the RCA pipeline. Each request they stop is counted by reason, so
operators (and tests) see what was turned away and why. Slack's notice that it
is dropping culprit's events is acknowledged and logged first.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import structlog
from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import SQLAlchemyError

from bot.channels import ChannelDirectory
from bot.metrics import REQUESTS_DROPPED
from bot.reply_queue import ReplyQueue
from bot.slack_shapes import misshapen
from knowledge.claims import claim
from knowledge.config import Settings
from knowledge.db import database_failure
from knowledge.incidents import SLACK_DELIVERIES

log = structlog.get_logger(__name__)

CLAIM_TIMEOUT_S = 1.5
CLAIM_THREADS = 8
# Claims queued or running at once. A hung database holds every claim thread; without a bound each
# request after that queued one more claim, for as long as the database stayed hung.
CLAIMS_WAITING = 50
RATE_WINDOW_S = 60.0


class RateLimiter:
    """At most ``per_minute`` requests per key (a user; a user's re-runs of one incident) in any sliding minute, per process.

    A key quiet for a minute is forgotten, at most once a minute for all of
    them: otherwise every user (and every re-run key) ever seen would stay in
    memory for the life of the process.
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._swept_at = float("-inf")

    def __len__(self) -> int:
        """How many keys are remembered now."""
        with self._lock:
            return len(self._seen)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            if now - self._swept_at >= RATE_WINDOW_S:
                self._seen = {key: times for key, times in self._seen.items() if times and now - times[-1] < RATE_WINDOW_S}
                self._swept_at = now
            recent = self._seen.setdefault(key, deque())
            while recent and now - recent[0] >= RATE_WINDOW_S:
                recent.popleft()
            if len(recent) >= self.per_minute:
                return False
            recent.append(now)
            return True


def delivery_key(body: dict[str, Any]) -> tuple[str, str] | None:
    """The id that a retry of this delivery shares with the original, if it can be retried."""
    if body.get("type") == "event_callback" and body.get("event_id"):
        return "event", str(body["event_id"])
    if body.get("command"):
        seed = body.get("trigger_id") or "|".join(
            str(body.get(name, "")) for name in ("user_id", "channel_id", "text", "command")
        )
        return "command", "cmd-" + hashlib.sha256(str(seed).encode()).hexdigest()[:40]
    return None


def _worth_remembering(body: dict[str, Any], settings: Settings, channels: ChannelDirectory) -> bool:
    """Plain channel messages are ignored unless they are reports: no need to store their ids."""
    event = body.get("event") or {}
    if event.get("type") != "message":
        return True
    return bool(settings.reports_channel) and channels.listed(event.get("channel", ""), [settings.reports_channel])


def _is_from_a_bot(body: dict[str, Any], own_user_id: str | None) -> bool:
    """Another bot's event, or our own (the app turns Bolt's self-event filter off so this one counts it)."""
    event = body.get("event") or {}
    if own_user_id and event.get("user") == own_user_id and event.get("type") != "member_joined_channel":
        return True  # (a join names who joined: culprit being added to a channel is news, not an echo)
    return bool(event.get("bot_id") or event.get("subtype") == "bot_message" or event.get("bot_profile"))


def _ephemeral_ack(text: str) -> BoltResponse:
    """A slash-command reply only the caller sees, sent as the HTTP response itself."""
    return BoltResponse(
        status=200,
        body=json.dumps({"response_type": "ephemeral", "text": text}),
        headers={"content-type": "application/json"},
    )


def claim_queue() -> ReplyQueue:
    """Where delivery claims run, beside the request, so a slow database cannot push the ack past Slack's
    3 seconds. The app's stop drains it (``bot.app.finish_acked_replies``): its threads end with the server."""
    return ReplyQueue(CLAIMS_WAITING, CLAIM_THREADS, name="claim")


def install_guards(
    app: App, settings: Settings, channels: ChannelDirectory, limiter: RateLimiter, claims: ReplyQueue
) -> None:
    """Register the guards as global middleware, in the order they must run; delivery claims run in ``claims``."""
    database_url = settings.resolved_database_url

    def acknowledge_slacks_rate_limit(body: dict[str, Any], next: Callable[[], None]) -> BoltResponse | None:
        """Slack's ``app_rate_limited`` notice has no inner event, so no listener (nor the catch-all for events)
        matched it: Bolt answered 404, a failed delivery, and Slack disables an app's events past 5% of those."""
        if body.get("type") != "app_rate_limited":
            next()
            return None
        log.error("slack is dropping events sent to culprit: over 30,000 an hour from one workspace",
                  team=body.get("team_id"), since_minute=body.get("minute_rate_limited"))
        return BoltResponse(status=200, body="")

    def ignore_bots(body: dict[str, Any], context: BoltContext, next: Callable[[], None]) -> BoltResponse | None:
        if _is_from_a_bot(body, context.bot_user_id):
            REQUESTS_DROPPED.labels(reason="bot").inc()
            return BoltResponse(status=200, body="")
        next()
        return None

    def allow_listed(
        body: dict[str, Any], context: BoltContext, next: Callable[[], None]
    ) -> BoltResponse | None:
        user_id, channel_id = channel_event_actor(body, context.bot_user_id) or context.user_id, context.channel_id
        if settings.allowed_users and user_id not in settings.allowed_users:
            REQUESTS_DROPPED.labels(reason="user").inc()
            log.info("request from a user not allowed", user=user_id)
            return _refusal(body, "culprit is not enabled for you; ask an admin to add you.")
        if settings.allowed_channels and channel_id and not channels.listed(channel_id, settings.allowed_channels):
            REQUESTS_DROPPED.labels(reason="channel").inc()
            log.info("request from a channel not allowed", channel=channel_id)
            return _refusal(body, "culprit is not enabled in this channel.")
        next()
        return None

    def once_per_delivery(
        body: dict[str, Any], request: BoltRequest, next: Callable[[], None]
    ) -> BoltResponse | None:
        key = delivery_key(body)
        if key is not None and _worth_remembering(body, settings, channels):
            kind, delivery_id = key
            first = _first_delivery(claims, partial(claim, SLACK_DELIVERIES, delivery_id, database_url))
            if not first:
                REQUESTS_DROPPED.labels(reason="duplicate").inc()
                retry = (request.headers.get("x-slack-retry-num") or [None])[0]
                log.info("duplicate delivery dropped", delivery=delivery_id, kind=kind, retry=retry)
                return BoltResponse(status=200, body="")
        next()
        return None

    def within_rate_limit(
        body: dict[str, Any], context: BoltContext, client: WebClient, next: Callable[[], None]
    ) -> BoltResponse | None:
        asks = body.get("command") or (body.get("event") or {}).get("type") == "app_mention"
        if asks and context.user_id and not limiter.allow(context.user_id):
            REQUESTS_DROPPED.labels(reason="rate").inc()
            text = (
                f"You've asked {limiter.per_minute} times in the last minute; "
                "give the running investigations a moment and ask again."
            )
            if body.get("command"):
                return _ephemeral_ack(text)
            try:
                client.chat_postEphemeral(channel=context.channel_id, user=context.user_id, text=text)
            except SlackApiError as error:
                log.warning("could not tell a user they are rate limited", error=error.response.get("error"))
            return BoltResponse(status=200, body="")
        next()
        return None

    for guard in (acknowledge_slacks_rate_limit, ignore_bots, allow_listed, once_per_delivery, within_rate_limit):
        app.middleware(guard)


def refuse_misshapen(body: dict[str, Any]) -> BoltResponse | None:
    """A 400 naming the fields of ``body`` that are not the types Slack sends (:func:`misshapen`), or None.

    The app runs it before Bolt's dispatch (``bot.app``), not as a middleware: Bolt's own middleware
    reads the event, and builds every function middleware's arguments (a click's first action, a view's
    type) from the body, before a guard could run; a misshapen body made that raise, a 500 and a traceback.
    The signature is checked before it all the same: by the server (``bot.server``), or by the Socket Mode
    connection's app token.
    """
    if not (problems := misshapen(body)):
        return None
    REQUESTS_DROPPED.labels(reason="malformed").inc()
    log.warning("signed slack request refused: fields of the wrong type", problems=problems[:5])
    return BoltResponse(status=400, body=json.dumps({"error": "; ".join(problems[:5])}),
                        headers={"content-type": "application/json"})


def _first_delivery(claims: ReplyQueue, claim_delivery: Callable[[], bool]) -> bool:
    """Whether this delivery is the first of its id, as far as the database says within ``CLAIM_TIMEOUT_S``.

    Fails open: a missed duplicate costs one extra answer, a dropped request costs an answer. With
    ``CLAIMS_WAITING`` claims already queued on a slow database the claim is not even queued.
    """
    first_claim = claims.submit(claim_delivery)
    if first_claim is None:
        log.warning("delivery not checked for a retry: the earlier claims still wait on the database; answering anyway",
                    waiting=claims.capacity)
        return True
    try:
        return first_claim.result(timeout=CLAIM_TIMEOUT_S)
    except (SQLAlchemyError, TimeoutError) as error:
        log.warning("could not record the delivery in time; answering anyway", error=database_failure(error))
        return True


def channel_event_actor(body: dict[str, Any], bot_user_id: str | None) -> str | None:
    """Who a channel event speaks for, which Bolt does not read: the creator of a new channel, or who added culprit.

    Without it the allow-list saw no user on ``channel_created`` and refused every
    new incident channel, and no one could be held to it.
    """
    event = body.get("event")
    if not isinstance(event, dict):
        return None
    actor: Any = None
    if event.get("type") == "channel_created" and isinstance(event.get("channel"), dict):
        actor = event["channel"].get("creator")
    elif event.get("type") == "member_joined_channel" and event.get("user") == bot_user_id:
        actor = event.get("inviter")
    return actor if isinstance(actor, str) and actor else None


def _refusal(body: dict[str, Any], text: str) -> BoltResponse:
    return _ephemeral_ack(text) if body.get("command") else BoltResponse(status=200, body="")
