"""Tracebacks and messages in the log without a database's values or a URL's password, whoever logged them.

Culprit's own code logs a database error by type and SQLSTATE (``knowledge.db.failure_fields``), but the
libraries under it log an exception they caught with its traceback: APScheduler ("Job ... raised an
exception"), Bolt ("Failed to run listener function (error: ...)", the message itself holding the error's
text), uvicorn ("Exception in ASGI application"). A traceback ends in each chained error's message, and a
database error's message holds what PostgreSQL refused (``DETAIL: Key (reporter)=(jane@example.com) already
exists``, ``Failing row contains (...)``) and SQLAlchemy's adds the statement's parameters.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator, MutableMapping
from typing import Any

from knowledge.db import database_failure, is_database_error
from knowledge.errors import mask_url


def redact_exceptions(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor, in place of ``format_exc_info``: the exception's traceback as ``exception``, with
    each database error's message, there and in the line's other texts (Bolt's message), replaced by its type
    and SQLSTATE, and every URL's user and password masked in every text of the line."""
    error = _logged_error(event_dict.pop("exc_info", None))
    replacements: list[tuple[str, str]] = []
    if error is not None:
        shown = traceback.TracebackException.from_exception(error)
        for link, node in _pairs(error, shown):
            if is_database_error(link) and node._str:
                replacements.append((node._str, database_failure(link)))
                node._str = database_failure(link)  # the text the traceback ends each error's part with
        event_dict["exception"] = "".join(shown.format())
    replacements.sort(key=lambda pair: len(pair[0]), reverse=True)  # SQLAlchemy's message holds its driver's
    for key, value in event_dict.items():
        if isinstance(value, str):
            for message, failure in replacements:
                value = value.replace(message, failure)
            event_dict[key] = mask_url(value)
    return event_dict


def _logged_error(exc_info: Any) -> BaseException | None:
    """The exception ``exc_info`` names, in any of the forms logging and structlog take it."""
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, tuple):
        exc_info = exc_info[1]
    return exc_info if isinstance(exc_info, BaseException) else None


def _pairs(
    error: BaseException, shown: traceback.TracebackException
) -> Iterator[tuple[BaseException, traceback.TracebackException]]:
    """Each error in ``error``'s chains and exception groups with the part of ``shown`` that renders it.

    ``shown`` holds a part for each cause, context and group member it renders (none for one met before,
    so a cycle ends); its ``_str`` is the message the part ends in, the one text a traceback takes from
    the error itself."""
    pending = [(error, shown)]
    while pending:
        link, node = pending.pop()
        yield link, node
        for linked, part in ((link.__cause__, node.__cause__), (link.__context__, node.__context__)):
            if linked is not None and part is not None:
                pending.append((linked, part))
        if isinstance(link, BaseExceptionGroup) and node.exceptions:
            pending.extend(zip(link.exceptions, node.exceptions))
