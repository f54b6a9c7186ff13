"""Messages in the feedback channel become bug reports; every other message is ignored.

Slack sends every message in every channel the bot is in (``message.channels``);
listening to all of them here also keeps Bolt from answering 404 to the rest.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import structlog
from slack_bolt import App, BoltContext

from bot.metrics import REPORTS_INGESTED
from bot.runtime import BotRuntime

log = structlog.get_logger(__name__)


def is_report(event: dict[str, Any], runtime: BotRuntime) -> bool:
    """A person's new message in the configured feedback channel (not an edit, join or bot post)."""
    channel = runtime.settings.reports_channel
    return bool(
        channel
        and event.get("text")
        and not event.get("subtype")
        and not event.get("bot_id")
        and runtime.channels.listed(event.get("channel", ""), [channel])
    )


def handle_message(event: dict[str, Any], context: BoltContext) -> None:
    runtime: BotRuntime = context["culprit"]
    if not is_report(event, runtime):
        return
    if importlib.util.find_spec("tools.report_intake") is None:
        log.warning("a report arrived but report intake is not installed", channel=event.get("channel"))
        return
    intake = importlib.import_module("tools.report_intake")
    stored = intake.ingest_report_texts([event["text"]], source="slack", database_url=runtime.database_url)
    REPORTS_INGESTED.labels(source="slack").inc(stored if isinstance(stored, int) else 1)
    log.info("report ingested from slack", channel=event.get("channel"), ts=event.get("ts"))


def register(app: App) -> None:
    app.event("message")(handle_message)
