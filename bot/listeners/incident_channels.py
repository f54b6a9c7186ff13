"""A new incident channel, or culprit added to one, gets its first suspects; the re-run button ranks again.

``channel_created`` (culprit joins the public channel to answer in it) and
``member_joined_channel`` for culprit itself both start the channel's one
investigation, from its name, topic and purpose. Anything else about channels
is acknowledged and ignored.

Slack does not send an event again once it was acknowledged, so a database
that fails while the catalog is read or the channel claimed is tried again
(after :data:`knowledge.db.RETRY_DELAYS_S`; the waits end at shutdown); if it
still fails, the channel is told how to start the investigation by hand,
rather than left without one in silence. Those waits (36 s in all) run on the
runtime's bounded ``channel_starts`` queue, not on the Bolt listener thread
that took the event, so an outage during a burst of new channels does not use
up the threads every other Slack request is acked on; when that queue is full
the channel is told how to start by hand at once. A stopping server finishes
the queue (each start making its last try at once) before it exits, within
its shutdown grace; a start not begun by then tells the channel how to start by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog
from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.auto_investigations import (
    AUTO_INCIDENT_ID,
    RERUN_ACTION,
    RepliesFull,
    Rerun,
    StillStarting,
    channel_trigger,
    rerun,
    start_investigation,
)
from bot.runtime import BotRuntime
from knowledge.db import UNREACHABLE, database_failure, retry_while_unreachable, utcnow

log = structlog.get_logger(__name__)


def _investigate_channel(
    runtime: BotRuntime, client: WebClient, channel: str, started_at: datetime, join: bool, bot_user_id: str | None
) -> None:
    if not runtime.channels.is_incident_channel(channel, runtime.settings):
        return
    try:
        info = client.conversations_info(channel=channel).get("channel") or {}
        if join:
            client.conversations_join(channel=channel)
    except SlackApiError as error:
        log.warning("cannot open the new incident channel", channel=channel, error=error.response.get("error"))
        return
    if runtime.channel_starts.reserve() is None:
        log.warning("channel investigation not started: too many new incident channels waiting", channel=channel)
        _tell_how_to_start_by_hand(client, channel, bot_user_id, why="too many incident channels are waiting for it")
        return
    runtime.channel_starts.start(
        partial(_start, runtime, client, channel, info, started_at, bot_user_id),
        partial(_tell_how_to_start_by_hand, client, channel, bot_user_id, why="culprit was restarting"),
    )


def _start(
    runtime: BotRuntime, client: WebClient, channel: str, info: dict[str, Any], started_at: datetime, bot_user_id: str | None
) -> None:
    """Start the channel's investigation, or tell the channel how to start it by hand (on a channel-start thread)."""
    try:
        if not _start_once_the_database_answers(runtime, client, channel, info, started_at):
            _tell_how_to_start_by_hand(client, channel, bot_user_id, why="its database did not answer")
    except StillStarting:  # another event about the channel is starting it
        log.info("channel investigation already being started", channel=channel)
    except (RepliesFull, SlackApiError) as error:  # its claim was given back: culprit joining later starts it
        log.warning("could not start the channel's investigation", channel=channel, error=type(error).__name__)


def _start_once_the_database_answers(
    runtime: BotRuntime, client: WebClient, channel: str, info: dict[str, Any], started_at: datetime
) -> bool:
    """Start the channel's investigation (or find it started), trying again while the database is
    unreachable; False once the tries are spent. A failed try leaves nothing claimed: the catalog read and
    the claim are what raise here (``start_investigation`` handles a failure after its claim itself)."""

    def start() -> None:
        start_investigation(runtime, client, channel_trigger(channel, info, started_at, runtime.database_url))

    def retrying(attempt: int, delay: float, error: Exception) -> None:
        log.warning("channel investigation not started: the database failed; trying again", channel=channel,
                    attempt=attempt, retry_in_s=delay, error=database_failure(error))

    try:
        retry_while_unreachable(start, runtime.database_retry_delays_s, runtime.stopping, retrying)
    except UNREACHABLE as error:
        log.error("channel investigation not started: the database failed", channel=channel, error=database_failure(error))
        return False
    return True


def _tell_how_to_start_by_hand(client: WebClient, channel: str, bot_user_id: str | None, why: str) -> None:
    mention = f"<@{bot_user_id}>" if bot_user_id else "@culprit"
    try:
        client.chat_postMessage(channel=channel, text=(
            f"⚠️ culprit could not start investigating this incident: {why}. "
            f"Start it by hand: `/rca <what is broken>` here, or mention {mention} with what you see."
        ))  # fmt: skip
    except SlackApiError as error:
        log.warning("could not tell the channel to start its investigation by hand", channel=channel,
                    error=error.response.get("error"))


def handle_channel_created(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    runtime: BotRuntime = context["culprit"]
    channel = event.get("channel") or {}
    if not isinstance(channel, dict) or not channel.get("id"):
        return
    runtime.channels.remember(channel["id"], channel.get("name"))
    created = channel.get("created")
    started_at = datetime.fromtimestamp(created, UTC) if isinstance(created, int) and 0 < created <= utcnow().timestamp() else utcnow()
    _investigate_channel(runtime, client, channel["id"], started_at, join=True, bot_user_id=context.bot_user_id)


def handle_member_joined(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    if event.get("user") != context.bot_user_id or not isinstance(event.get("channel"), str):
        return  # someone else joined
    _investigate_channel(context["culprit"], client, event["channel"], utcnow(), join=False, bot_user_id=context.bot_user_id)


def handle_rerun(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    runtime: BotRuntime = context["culprit"]
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id", "")
    user, incident_id = body["user"]["id"], str(action.get("value") or "")
    # Checked before the query: a value no investigation has (a NUL in it fails PostgreSQL's) re-runs nothing.
    if not AUTO_INCIDENT_ID.fullmatch(incident_id) or rerun(runtime, client, channel, user, incident_id) is Rerun.NOTHING:
        client.chat_postEphemeral(channel=channel, user=user, text="There is no investigation of mine to re-run in this channel.")


def register(app: App) -> None:
    app.event("channel_created")(handle_channel_created)
    app.event("member_joined_channel")(handle_member_joined)
    app.action(RERUN_ACTION)(handle_rerun)
