"""Turn what a responder typed after ``/rca`` (or in a mention) into an incident query.

Responders type in a hurry: ``service:NAME`` and ``at:TIME`` may sit anywhere
in the text; everything else is the symptom. A typo is answered as such: a time
before 1970, a service the catalog lacks or text no database stores (a NUL, a
lone surrogate) gets a sentence with the fix, not an investigation that fails
or quietly matches nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select

from knowledge.db import session_scope, unstorable
from knowledge.errors import InputError
from knowledge.services import Service
from knowledge.times import TimeOutOfRange, utc_moment
from tools.rca.answers import IncidentQuery

MAX_TEXT = 2000
_SERVICE = re.compile(r"(?:^|\s)service:(?P<value>[\w.\-/]+)", re.IGNORECASE)
_AT = re.compile(r"(?:^|\s)at:(?P<value>\S+)", re.IGNORECASE)
# A label never holds "<" (Slack escapes it): stopping there keeps an unclosed "<@U|" flood linear, not quadratic.
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^<>]*)?>")
CATALOG_NAMES_SHOWN = 10


def strip_mentions(text: str) -> str:
    """``<@U123> why is checkout down`` -> ``why is checkout down``."""
    return _MENTION.sub(" ", text).strip()


def parse_time(value: str) -> datetime:
    """ISO 8601 with ``Z`` or an offset, from 1970 on; a time without a zone is read as UTC."""
    try:
        return utc_moment(value)
    except TimeOutOfRange as error:
        raise InputError(f"`at:{value}` {error}; give the time the incident started, e.g. `at:2024-05-01T09:40Z`") from None
    except ValueError:
        raise InputError(f"`at:{value}` is not an ISO time; write it like `at:2024-05-01T09:40Z`") from None


def incident_id_for(*parts: str) -> str:
    """A stable, short id, so a retried request names the same incident."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:10]
    return f"slack-{digest}"


def names_time(text: str) -> bool:
    """Whether a request gives the incident's time (``at:``); without it a thread keeps its earlier time."""
    return _last(_AT, strip_mentions(text or "")) is not None


def parse_incident_request(text: str, now: datetime, incident_id: str | None = None) -> IncidentQuery:
    """The incident query, or an ``InputError`` whose message is the fix (shown as usage)."""
    text = strip_mentions(text or "")
    if len(text) > MAX_TEXT:
        raise InputError(f"that is {len(text)} characters; keep the description under {MAX_TEXT}")
    if why := unstorable(text):  # the investigation stores the incident's text: it would fail there, misreported
        raise InputError(f"the description {why}; remove it and ask again")
    service = _last(_SERVICE, text)
    at = _last(_AT, text)
    symptom = " ".join(_AT.sub(" ", _SERVICE.sub(" ", text)).split())
    if not symptom:
        raise InputError("describe the symptom, not only the service or time")
    started_at = parse_time(at) if at else now
    if started_at > now:
        raise InputError(f"`at:{at}` is in the future; give the time the incident started")
    return IncidentQuery(text=symptom, started_at=started_at, service=service, incident_id=incident_id)


def unknown_service(service: str | None, catalog: Collection[str]) -> str | None:
    """What to tell a responder whose ``service:`` is not in the catalog, naming the closest services.

    ``None`` when the service is known, none was given, or no catalog was
    ingested (then there is nothing to check against). A misspelt service
    would otherwise match no change quietly and the answer would look unsure.
    """
    if service is None or not catalog or service in catalog:
        return None
    by_lower = {name.lower(): name for name in catalog}
    close = [by_lower[name] for name in difflib.get_close_matches(service.lower(), by_lower, n=5, cutoff=0.6)]
    if close:
        hint = f"did you mean {_listed(close)}?"
    else:
        shown = sorted(catalog)[:CATALOG_NAMES_SHOWN]
        hint = f"the catalog has {_listed(shown)}" + (" …" if len(catalog) > len(shown) else ".")
    return f"There is no service `{service}` in the catalog; {hint} Ask again with one of them, or without `service:`."


def catalog_services(database_url: str) -> list[str]:
    """The service names in the catalog (``culprit ingest catalog``)."""
    with session_scope(database_url) as session:
        return list(session.scalars(select(Service.name)))


def _listed(names: list[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def _last(pattern: re.Pattern[str], text: str) -> str | None:
    matches = list(pattern.finditer(text))
    return matches[-1].group("value") if matches else None
