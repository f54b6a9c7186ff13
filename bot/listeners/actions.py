"""👍 / 👎 on a suggestion: store the vote, show it on the message."""

from __future__ import annotations

import re
from typing import Any

import structlog
from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from sqlalchemy.exc import SQLAlchemyError

from bot.blocks import with_vote
from bot.metrics import FEEDBACK_VOTES
from bot.runtime import BotRuntime
from knowledge.errors import CulpritError, InputError
from tools.feedback.votes import DOWN, UP, record_vote

log = structlog.get_logger(__name__)

FEEDBACK_ACTION = re.compile(r"^feedback_(up|down)$")


def handle_feedback(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    ack()
    runtime: BotRuntime = context["culprit"]
    vote = UP if action["action_id"] == "feedback_up" else DOWN
    user = body["user"]["id"]
    channel = body["channel"]["id"]
    message = body.get("message") or {}
    try:
        tally = record_vote(int(action["value"]), user, vote, database_url=runtime.database_url)
    except (CulpritError, SQLAlchemyError, ValueError) as error:
        log.warning("vote not stored", error=str(error)[:200], value=action.get("value"))
        reason = (
            f"I couldn't store your vote: {error}."
            if isinstance(error, InputError)
            else "I couldn't store your vote right now (the database is unreachable); please click again in a minute."
        )
        client.chat_postEphemeral(channel=channel, user=user, text=reason)
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
        client.chat_update(channel=channel, ts=message["ts"], text=message.get("text") or "culprit", blocks=blocks)


def register(app: App) -> None:
    app.action(FEEDBACK_ACTION)(handle_feedback)
