"""Turn what a responder typed after ``/rca`` (or in a mention) into an incident query.

Responders type in a hurry: ``service:NAME`` and ``at:TIME`` may sit anywhere
in the text; everything else is the symptom.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from knowledge.errors import InputError
from tools.rca.answers import IncidentQuery

MAX_TEXT = 2000
_SERVICE = re.compile(r"(?:^|\s)service:(?P<value>[\w.\-/]+)", re.IGNORECASE)
_AT = re.compile(r"(?:^|\s)at:(?P<value>\S+)", re.IGNORECASE)
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


def strip_mentions(text: str) -> str:
    """``<@U123> why is checkout down`` -> ``why is checkout down``."""
    return _MENTION.sub(" ", text).strip()


def parse_time(value: str) -> datetime:
    """ISO 8601 with ``Z`` or an offset; a time without a zone is read as UTC."""
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"`at:{value}` is not an ISO time; write it like `at:2024-05-01T09:40Z`") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def incident_id_for(*parts: str) -> str:
    """A stable, short id, so a retried request names the same incident."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:10]
    return f"slack-{digest}"


def parse_incident_request(text: str, now: datetime, incident_id: str | None = None) -> IncidentQuery:
    """The incident query, or an ``InputError`` whose message is the fix (shown as usage)."""
    text = strip_mentions(text or "")
    if len(text) > MAX_TEXT:
        raise InputError(f"that is {len(text)} characters; keep the description under {MAX_TEXT}")
    service = _last(_SERVICE, text)
    at = _last(_AT, text)
    symptom = " ".join(_AT.sub(" ", _SERVICE.sub(" ", text)).split())
    if not symptom:
        raise InputError("describe the symptom, not only the service or time")
    started_at = parse_time(at) if at else now
    if started_at > now:
        raise InputError(f"`at:{at}` is in the future; give the time the incident started")
    return IncidentQuery(text=symptom, started_at=started_at, service=service, incident_id=incident_id)


def _last(pattern: re.Pattern[str], text: str) -> str | None:
    matches = list(pattern.finditer(text))
    return matches[-1].group("value") if matches else None
