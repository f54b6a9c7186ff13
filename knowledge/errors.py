"""Errors a user can act on: the CLI prints them as one line, never a traceback; and how any error is told
in a log line without what it may carry (a URL's password, the text another server echoed back)."""

import re
from urllib.parse import urlsplit

# Userinfo not already masked by ``knowledge.config.shown_url`` (``user:***@``), which keeps the user.
_USERINFO = re.compile(r"(?<=://)(?![^/@\s]*:\*\*\*@)[^/@\s]+@")


class CulpritError(Exception):
    """A failure with a message that says what went wrong and how to fix it."""


class InputError(CulpritError):
    """A file, line or argument the user gave cannot be used."""


def mask_url(text: str, called: str | None = None) -> str:
    """``text`` with the user and password of every URL in it replaced by ``***``, and the password of the
    ``called`` URL before its ``@`` wherever it appears without its scheme: an HTTP client that takes
    ``user:password@host`` for a host and a port quotes it in its own words (``nonnumeric port:
    'password@host'``)."""
    masked = _USERINFO.sub("***@", text)
    password = urlsplit(called).password if called else None
    return masked.replace(f"{password}@", "***@") if password else masked


def masked_error(error: BaseException, limit: int = 300, called: str | None = None) -> str:
    """``Type: text`` of an unexpected error for a log or report line (of a call to ``called``, whose password
    :func:`mask_url` masks too): masked before it is cut, since a cut through a URL's password would leave no
    ``@`` for the mask to find."""
    return f"{type(error).__name__}: {mask_url(str(error), called)[:limit]}"


def failed_call(error: BaseException) -> dict[str, str]:
    """Log fields for a failed call to another server (Chroma, an LLM, Slack): the error's type, and
    culprit's own message (its URLs masked) when culprit raised it, never another library's message.

    An HTTP client's message can hold the URL it called with its password; a server's error can quote
    what it was sent: an incident's text, a report's, a wiki page's. The type says which part failed.
    """
    fields = {"error_type": type(error).__name__}
    if isinstance(error, CulpritError):
        fields["reason"] = mask_url(str(error))[:300]
    return fields
