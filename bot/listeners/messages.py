"""Messages in the feedback channel become bug reports; every other message is ignored.

Slack sends every message in every channel the bot is in (``message.channels``);
listening to all of them here also keeps Bolt from answering 404 to the rest.
"""

from __future__ import annotations

from concurrent.futures import Future
from functools import partial
from typing import Any

import structlog
from slack_bolt import App, BoltContext

from bot.metrics import REQUESTS_DROPPED
from bot.report_intake import INTAKE_WAITING, take_in_later
from bot.runtime import BotRuntime
from knowledge.db import database_failure, storable
from tools.reports.intake import IncomingReport, IntakeResult

log = structlog.get_logger(__name__)

# A person's new message has no subtype, or "file_share" when a file (a screenshot) is attached to it.
PERSONS_MESSAGES = (None, "file_share")


def is_report(event: dict[str, Any], runtime: BotRuntime) -> bool:
    """A person's new top-level message in the configured feedback channel, with a file or not (not an edit,
    join or bot post, nor a reply in a report's thread: a triager's "thanks, looking" was stored as a report).
    A reply also sent to the channel (``thread_broadcast``) is a reply all the same, and no report."""
    channel = runtime.settings.reports_channel
    return bool(
        channel
        and _report_text(event).strip()
        and event.get("subtype") in PERSONS_MESSAGES
        and event.get("thread_ts") in (None, event.get("ts"))
        and not event.get("bot_id")
        and runtime.channels.listed(event.get("channel", ""), [channel])
    )


def handle_message(event: dict[str, Any], context: BoltContext) -> None:
    runtime: BotRuntime = context["culprit"]
    if not is_report(event, runtime):
        REQUESTS_DROPPED.labels(reason="not_a_report").inc()
        return
    message_id = f"{event.get('channel')}:{event.get('ts')}"
    report = IncomingReport(id=f"slack:{message_id}", text=_report_text(event))  # stamped when it is stored
    # Redaction runs on the intake thread: this listener thread is one of those Bolt acks commands on.
    stored = take_in_later([report], "slack", runtime.settings)
    if stored is None:
        log.error("report from slack not stored: too many reports wait for the database", message=message_id,
                  waiting=INTAKE_WAITING)
        return
    stored.add_done_callback(partial(_log_stored, message_id))


def _report_text(event: dict[str, Any]) -> str:
    """The message's text as a database stores it: PostgreSQL stores no NUL, and the report would be lost for one."""
    return storable(str(event.get("text") or ""))


def _log_stored(message_id: str, stored: Future[IntakeResult]) -> None:
    if stored.cancelled():  # never tried: the shutdown grace ran out first, and finish_intake logged its id
        return
    if (error := stored.exception()) is not None:
        log.error("report from slack not stored", message=message_id, error=database_failure(error))
        return
    result = stored.result()
    log.info("report ingested from slack", message=message_id, stored=result.stored, duplicates=result.duplicates)


def register(app: App) -> None:
    app.event("message")(handle_message)
