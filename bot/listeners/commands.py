"""``/rca <symptom> [service:NAME] [at:TIME]``: ack at once, investigate off the request thread, post."""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.blocks import USAGE, SlackMessage, escape, investigating_text, notice
from bot.incident_request import (
    catalog_services,
    incident_id_for,
    parse_incident_request,
    unknown_service,
)
from bot.replies import deliver_answer, prepare, rca_reply, tell_restarting
from bot.runtime import BotRuntime
from knowledge.db import utcnow
from knowledge.errors import InputError

log = structlog.get_logger(__name__)


def handle_rca(ack: Ack, command: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    runtime: BotRuntime = context["culprit"]
    text = (command.get("text") or "").strip()
    if not text:
        ack(response_type="ephemeral", text=USAGE)
        return
    seed = command.get("trigger_id") or f"{command.get('user_id')}|{command.get('channel_id')}|{text}"
    try:
        query = parse_incident_request(text, utcnow(), incident_id=incident_id_for(seed))
    except InputError as error:
        ack(response_type="ephemeral", text=f"{escape(str(error))}\n{USAGE}")
        return
    channel = command["channel_id"]

    def work() -> SlackMessage:
        unknown = unknown_service(query.service, catalog_services(runtime.database_url))
        return notice(escape(unknown)) if unknown else rca_reply(runtime.investigate, query)()

    def deliver() -> None:
        with structlog.contextvars.bound_contextvars(
            incident_id=query.incident_id, channel=channel, user=command.get("user_id"), kind="command"
        ):
            log.info("investigating", service=query.service, started_at=query.started_at.isoformat())
            message = prepare(runtime, "command", work)
            deliver_answer(
                client, message, runtime.database_url,
                channel=channel, incident_id=query.incident_id, response_url=command.get("response_url"),
            )

    # The listener thread only acks: the investigation and the post wait in the reply queue.
    position = runtime.replies.reserve()
    if position is None:
        log.warning("reply queue full", capacity=runtime.replies.capacity)
        ack(response_type="ephemeral", text=runtime.replies.busy_text())
        return
    try:
        ack(response_type="in_channel", text=investigating_text(query.text) + runtime.replies.queued_text(position))
    except Exception:
        runtime.replies.cancel()
        raise
    runtime.replies.start(deliver, tell_restarting(client, channel=channel, response_url=command.get("response_url")))
    runtime.channels.remember(channel, command.get("channel_name"))


def register(app: App) -> None:
    app.command("/rca")(handle_rca)
