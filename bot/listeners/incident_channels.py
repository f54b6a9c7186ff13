"""A new incident channel, or culprit added to one, gets its first suspects; the re-run button ranks again.

``channel_created`` (culprit joins the public channel to answer in it) and
``member_joined_channel`` for culprit itself both start the channel's one
investigation, from its name, topic and purpose. Anything else about channels
is acknowledged and ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.auto_investigations import (
    RERUN_ACTION,
    RepliesFull,
    Rerun,
    StillStarting,
    channel_trigger,
    rerun,
    start_investigation,
)
from bot.runtime import BotRuntime
from knowledge.db import utcnow

log = structlog.get_logger(__name__)


def _investigate_channel(runtime: BotRuntime, client: WebClient, channel: str, started_at: datetime, join: bool) -> None:
    if not runtime.channels.is_incident_channel(channel, runtime.settings):
        return
    try:
        info = client.conversations_info(channel=channel).get("channel") or {}
        if join:
            client.conversations_join(channel=channel)
    except SlackApiError as error:
        log.warning("cannot open the new incident channel", channel=channel, error=error.response.get("error"))
        return
    try:
        start_investigation(runtime, client, channel_trigger(channel, info, started_at, runtime.database_url))
    except StillStarting:  # another event about the channel is starting it
        log.info("channel investigation already being started", channel=channel)
    except (RepliesFull, SlackApiError) as error:  # its claim was given back: culprit joining later starts it
        log.warning("could not start the channel's investigation", channel=channel, error=repr(error)[:200])


def handle_channel_created(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    runtime: BotRuntime = context["culprit"]
    channel = event.get("channel") or {}
    if not isinstance(channel, dict) or not channel.get("id"):
        return
    runtime.channels.remember(channel["id"], channel.get("name"))
    created = channel.get("created")
    started_at = datetime.fromtimestamp(created, UTC) if isinstance(created, int) and 0 < created <= utcnow().timestamp() else utcnow()
    _investigate_channel(runtime, client, channel["id"], started_at, join=True)


def handle_member_joined(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    if event.get("user") != context.bot_user_id or not isinstance(event.get("channel"), str):
        return  # someone else joined
    _investigate_channel(context["culprit"], client, event["channel"], utcnow(), join=False)


def handle_rerun(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    runtime: BotRuntime = context["culprit"]
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id", "")
    user, incident_id = body["user"]["id"], str(action.get("value") or "")[:200]
    if rerun(runtime, client, channel, user, incident_id) is Rerun.NOTHING:
        client.chat_postEphemeral(channel=channel, user=user, text="There is no investigation of mine to re-run in this channel.")


def register(app: App) -> None:
    app.event("channel_created")(handle_channel_created)
    app.event("member_joined_channel")(handle_member_joined)
    app.action(RERUN_ACTION)(handle_rerun)
