"""Events culprit has no listener for are acknowledged with 200, not answered 404.

An app's event subscriptions can list more than it handles (a workspace admin
adds one, an old manifest keeps one); Bolt answers those 404, which Slack
counts as failed deliveries and retries. Registered last, so it only sees what
no other listener took.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from slack_bolt import App

log = structlog.get_logger(__name__)

ANY_EVENT = re.compile(".+")


def acknowledge(event: dict[str, Any]) -> None:
    """Bolt has acked the event already; note what arrived, do nothing else."""
    log.debug("event without a listener acknowledged", event_type=event.get("type"))


def register(app: App) -> None:
    app.event(ANY_EVENT)(acknowledge)
