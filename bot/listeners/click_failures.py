"""What a button or menu listener does when the click could not be stored: tell the clicker, log the error once.

Whatever failed (a value that is no suggestion, the database, a bug), the
clicker hears so: an error the listener let through became a traceback in the
log and nothing for the person who clicked.
"""

from __future__ import annotations

from typing import Any

import structlog
from slack_sdk import WebClient
from sqlalchemy.exc import SQLAlchemyError

from bot.blocks import click_failure
from knowledge.db import failure_fields
from knowledge.errors import CulpritError, mask_url

log = structlog.get_logger(__name__)


def answer_click_failure(
    client: WebClient, error: Exception, *, channel: str, user: str, could_not: str, retry: str, event: str, **fields: Any
) -> None:
    """Log ``error`` once under ``event`` with its type (and its traceback when it is a bug), then tell ``user``."""
    if isinstance(error, CulpritError):
        log.warning(event, error_type=type(error).__name__, error=mask_url(str(error))[:200], **fields)
    else:  # an outage is expected, a bug is not; a database error is logged without its parameters either way
        logged = log.warning if isinstance(error, SQLAlchemyError) else log.error
        logged(event, error_type=type(error).__name__, **failure_fields(error), **fields)
    client.chat_postEphemeral(channel=channel, user=user, text=click_failure(error, could_not, retry))
