"""👍 / 👎 on a suggestion: store the vote, show it on the message (and the confirmation two agreeing votes make).

A button's value is checked, not trusted: it must be a suggestion id, and the
suggestion must have been posted in the very message and channel clicked.
Votes confirm only in incident channels, as the Confirm button does: anyone
can make another channel, ``/rca`` there and vote with a friend.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.blocks import with_confirmation, with_vote
from bot.listeners.click_failures import answer_click_failure
from bot.metrics import FEEDBACK_VOTES
from bot.runtime import BotRuntime
from tools.feedback.votes import DOWN, UP, MessagePlace, record_vote, suggestion_id_from

log = structlog.get_logger(__name__)

FEEDBACK_ACTION = re.compile(r"^feedback_(up|down)$")


def clicked_place(body: dict[str, Any]) -> MessagePlace:
    """Where the click happened, as Slack (who signed the request) says; a button's value is only a claim."""
    message = body.get("message") or {}
    container = body.get("container") or {}
    return MessagePlace(
        channel=container.get("channel_id") or (body.get("channel") or {}).get("id", ""),
        message_ts=container.get("message_ts") or message.get("ts", ""),
        thread_ts=container.get("thread_ts") or message.get("thread_ts"),
    )


def handle_feedback(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    ack()
    runtime: BotRuntime = context["culprit"]
    vote = UP if action["action_id"] == "feedback_up" else DOWN
    user = body["user"]["id"]
    message = body.get("message") or {}
    clicked_in = clicked_place(body)
    channel = clicked_in.channel
    in_incident_channel = runtime.channels.is_incident_channel(channel, runtime.settings)
    try:
        suggestion_id = suggestion_id_from(action.get("value"))
        tally = record_vote(
            suggestion_id, user, vote,
            database_url=runtime.database_url, clicked_in=clicked_in, in_incident_channel=in_incident_channel,
        )
    except Exception as error:  # noqa: BLE001 - whatever failed, the clicker is told and it is logged
        answer_click_failure(
            client, error, channel=channel, user=user, could_not="store your vote", retry="click again",
            event="vote not stored", value=str(action.get("value"))[:40],
        )
        return
    FEEDBACK_VOTES.labels(vote="up" if vote == UP else "down").inc()
    log.info(
        "vote stored",
        incident_id=tally.incident_id,
        change=tally.change_id,
        vote=vote,
        user=user,
        up=tally.up,
        down=tally.down,
    )
    if message.get("ts"):
        blocks = with_vote(message.get("blocks") or [], tally.suggestion_id, tally.up, tally.down, user, vote)
        shown = any(block.get("block_id") == f"confirmed-{tally.suggestion_id}" for block in blocks)
        if tally.confirmed != shown:  # the votes just confirmed it, or a 👎 just undid the votes' confirmation
            blocks = with_confirmation(blocks, tally.suggestion_id, None, tally.confirmed)
        client.chat_update(channel=channel, ts=message["ts"], text=message.get("text") or "culprit", blocks=blocks)


def register(app: App) -> None:
    app.action(FEEDBACK_ACTION)(handle_feedback)
