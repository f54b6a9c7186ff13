"""``/rca <symptom> [service:NAME] [at:TIME]``: ack at once, investigate off the request thread, post."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

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
from knowledge.config import Settings
from knowledge.db import utcnow
from knowledge.errors import InputError

log = structlog.get_logger(__name__)

# Where Slack's response_urls point (GovSlack's too); CULPRIT_SLACK_API_URL's host is allowed besides.
SLACK_RESPONSE_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})


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
    response_url = slacks_response_url(command.get("response_url"), runtime.settings)

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
                channel=channel, incident_id=query.incident_id, response_url=response_url,
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
    runtime.replies.start(deliver, tell_restarting(client, channel=channel, response_url=response_url))
    runtime.channels.remember(channel, command.get("channel_name"))


def slacks_response_url(value: object, settings: Settings) -> str | None:
    """``value`` if it is a URL of Slack's (or of ``CULPRIT_SLACK_API_URL``'s host), else None.

    An answer in a channel culprit is not in goes to the command's ``response_url``: one a signed body
    pointed at an internal service or a cloud's metadata address had culprit POST the answer there.
    """
    api = urlsplit(settings.slack_api_url or "")
    try:
        url = urlsplit(value) if isinstance(value, str) and value else None
    except ValueError:  # "https://[hooks.slack.com/": a bracketed host that is no IPv6 address
        url = None
    if url is not None and (
        (url.scheme == "https" and url.hostname in SLACK_RESPONSE_HOSTS)
        or (bool(api.netloc) and (url.scheme, url.netloc) == (api.scheme, api.netloc))
    ):
        return value
    if value:
        log.warning("response_url refused: not Slack's", host=url.hostname if url else None)
    return None


def register(app: App) -> None:
    app.command("/rca")(handle_rca)
