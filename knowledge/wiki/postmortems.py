"""Postmortems that name the change behind an incident become confirmed root causes.

That makes the wiki a second source of training history next to the
interchange files and the responders' thumbs-up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge.changes import Change
from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.incidents import Incident, RootCause
from knowledge.times import TimeOutOfRange, utc_moment
from knowledge.wiki.pages import WikiPage

SOURCE = "postmortem"
_ROOT_CAUSE_LINE = re.compile(r"^\W*root[ _-]cause(?:[ _-]change)?\W*:\s*`?([0-9A-Za-z][\w.:/-]{5,63})`?", re.I | re.M)
MAX_CHANGE_ID = 64  # RootCause.change_id
MAX_INCIDENT_ID = 200  # Incident.id
MAX_SERVICE_NAME = 200  # Incident.service


@dataclass(frozen=True)
class PostmortemLink:
    """An incident and the change(s) its postmortem blames."""

    page: str
    incident_id: str
    change_ids: tuple[str, ...]
    title: str
    service: str | None
    started_at: datetime | None
    summary: str


@dataclass
class LinkReport:
    """Links stored, and one line per postmortem that could not be linked saying what to add."""

    linked: list[PostmortemLink]
    skipped: list[str]


def postmortem_links(pages: Iterable[WikiPage]) -> tuple[list[PostmortemLink], list[str]]:
    """The links the postmortems declare, and a note for each postmortem that declares too little."""
    links: list[PostmortemLink] = []
    skipped: list[str] = []
    for page in pages:
        if page.kind != "postmortem":
            continue
        try:  # one postmortem's bad value is its own note, never the end of everyone's links
            link = _link(page)
        except InputError as error:
            skipped.append(str(error))
            continue
        if link is not None:
            links.append(link)
    return links, skipped


def _link(page: WikiPage) -> PostmortemLink | None:
    """The link one postmortem declares, None when it names no root cause; an ``InputError`` names
    what to fix when a value would not fit the store (checked here, so one page cannot fail the
    transaction that links all of them)."""
    change_ids = _root_cause_changes(page)
    if not change_ids:
        return None
    declared = page.front_matter.get("incident")
    incident_id = str(declared if isinstance(declared, str | int) else "").strip()
    if not incident_id:
        raise InputError(f"{page.path}: names a root cause but no `incident:` id in its front matter")
    if len(incident_id) > MAX_INCIDENT_ID or not incident_id.isprintable():
        raise InputError(f"{page.path}: incident id is not one line of at most {MAX_INCIDENT_ID} characters")
    service = page.services[0] if page.services else None
    if service is not None and len(service) > MAX_SERVICE_NAME:
        raise InputError(f"{page.path}: service name is over {MAX_SERVICE_NAME} characters")
    return PostmortemLink(
        page=page.path,
        incident_id=incident_id,
        change_ids=change_ids,
        title=page.title,
        service=service,
        started_at=_started_at(page),
        summary=page.body.strip()[:4000],
    )


def link_postmortems(pages: Iterable[WikiPage], database_url: str, redact: Callable[[str], str]) -> LinkReport:
    """Upsert each linked incident (source ``postmortem``) and its ``RootCause`` rows.

    A new incident's title and text pass through ``redact`` first, as an answered incident's do
    (``tools.rca.store.stored_words``, which the callers pass: this tier cannot import it): training
    reads stored incidents into a model file, and a postmortem quotes the customer's e-mail or the
    on-call's phone as readily as a Slack message does. The page itself stays whole in the wiki."""
    links, skipped = postmortem_links(pages)
    linked: list[PostmortemLink] = []
    with session_scope(database_url) as session:
        for link in links:
            incident = session.get(Incident, link.incident_id)
            if incident is None:
                if link.started_at is None:
                    skipped.append(
                        f"{link.page}: incident {link.incident_id} is not in the store; "
                        "add `started_at:` (ISO time) to the front matter"
                    )
                    continue
                incident = Incident(
                    id=link.incident_id,
                    title=redact(link.title),
                    text=redact(link.summary),
                    service=link.service,
                    started_at=link.started_at,
                    source=SOURCE,
                )
                session.add(incident)
            elif link.started_at is not None:
                incident.started_at = link.started_at
            for change_id in link.change_ids:
                resolved = _full_change_id(session, change_id)
                if session.get(RootCause, (link.incident_id, resolved)) is None:
                    session.add(RootCause(incident_id=link.incident_id, change_id=resolved, source=SOURCE))
            session.flush()
            linked.append(link)
    return LinkReport(linked=linked, skipped=skipped)


def _root_cause_changes(page: WikiPage) -> tuple[str, ...]:
    declared = page.front_matter.get("root_cause_change")
    if isinstance(declared, str | int):
        declared = [declared]
    if not declared:
        return tuple(dict.fromkeys(_ROOT_CAUSE_LINE.findall(page.body)))
    if not isinstance(declared, list):
        raise InputError(f"{page.path}: root_cause_change must be a change id or a list of them")
    changes = tuple(dict.fromkeys(str(change).strip() for change in declared if str(change).strip()))
    for change in changes:
        if len(change) > MAX_CHANGE_ID or not change.isprintable():
            raise InputError(
                f"{page.path}: root_cause_change {change[:80]!r} is not a change id "
                f"(one line of at most {MAX_CHANGE_ID} characters, such as a sha)"
            )
    return changes


def _started_at(page: WikiPage) -> datetime | None:
    value = page.front_matter.get("started_at")
    if value is None or value == "":
        return None
    try:  # YAML reads 2024-05-01 and 2024-05-01T09:30:00Z as date and datetime; their str() is ISO again
        return utc_moment(str(value))
    except TimeOutOfRange as error:
        raise InputError(f"{page.path}: started_at {value!r} {error}; give the time from 1970 on") from None
    except ValueError:
        raise InputError(f"{page.path}: started_at {value!r} is not an ISO time such as 2024-05-01T09:30:00Z") from None


def _full_change_id(session: Session, change_id: str) -> str:
    """Postmortems quote short shas; store the full id when exactly one known change matches."""
    if session.get(Change, change_id) is not None or len(change_id) >= 40:
        return change_id
    matches = session.scalars(select(Change.id).where(Change.id.startswith(change_id)).limit(2)).all()
    return matches[0] if len(matches) == 1 else change_id
