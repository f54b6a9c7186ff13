"""What a request to the bot's HTTP server must pass before its body is trusted: size caps, signatures,
tokens, and JSON's nesting depth.

A body is read in chunks and refused the moment it passes its cap, whatever
``Content-Length`` says (or does not say, for a chunked upload), so an
anonymous multi-megabyte POST costs the server the cap, not the upload.

Every header byte is the sender's to choose: a timestamp that is no number, or
a signature with bytes outside ASCII (Starlette decodes headers as latin-1), is
a forgery like any other and must be refused as one, not raise.

Python's JSON parser recurses once per array or object it enters, so a body of
100,000 ``[`` raises RecursionError; :func:`json_body` counts the nesting first,
in one pass that does not recurse, and refuses what nests deeper than any
sender's payload does.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any

from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request
from starlette.responses import JSONResponse

_SLACK_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
UNIX_SECONDS_DIGITS = 12  # far beyond any time a sender signs at, far below int()'s 4300-digit limit
RETRY_AFTER_S = 30  # a database restarting or failing over is back within this (see bot.report_intake)
MAX_JSON_DEPTH = 64  # GitHub's, GitLab's and PagerDuty's payloads nest under 10 levels
# A JSON string, escapes included, up to its closing quote (or the end of a truncated body). Possessive,
# so a body of unterminated strings is still read once, not once per quote.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_CURLY_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_A_BRACKET = bytes(byte for byte in range(256) if byte not in b"[]{}")


class BodyTooLarge(Exception):
    """The body went past its cap; answer 413 without reading the rest."""


class NestedTooDeep(ValueError):
    """The body's JSON nests arrays and objects deeper than ``MAX_JSON_DEPTH``; answer 400 without parsing it."""


def retry_later(reason: str) -> JSONResponse:
    """503 with ``Retry-After``: the sender (a webhook, a report pipeline) should send the same thing again,
    e.g. while the database is unreachable. ``reason`` says what to resend; never put a database error in
    it (those name hosts and users: they go to the log only)."""
    return JSONResponse({"error": reason}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or :class:`BodyTooLarge` as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"body over {limit} bytes")
    return bytes(body)


def same_secret(expected: str, given: str) -> bool:
    """``given`` (a header, any latin-1 text) is ``expected``, compared in constant time.

    Compared as bytes: ``hmac.compare_digest`` raises TypeError on a str with non-ASCII characters.
    """
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def unix_seconds(value: str | None) -> int | None:
    """A timestamp header as unix seconds, or None when it is not plain ASCII digits of a sane length.

    ``str.isdigit`` alone lets through what ``int`` refuses ('²', 5000 digits).
    """
    if not value or len(value) > UNIX_SECONDS_DIGITS or not (value.isascii() and value.isdigit()):
        return None
    return int(value)


def bearer_matches(request: Request, token: str) -> bool:
    """``Authorization: Bearer <token>``, the scheme in any case (RFC 7235: ``bearer`` is as good), the
    token compared in constant time."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and same_secret(token, given)


def slack_refusal(request: Request, body: bytes, signing_secret: str) -> str | None:
    """Why the request is not Slack's, or None when its ``X-Slack-Signature`` over the raw body is
    right and was made less than five minutes ago.

    Checked before anything parses the body, so a forged request costs an HMAC,
    not a parse. Without a signing secret nothing is taken as signed. The
    headers' form, and the body's being UTF-8, are checked here because
    slack_sdk's verifier raises on a timestamp that is no number, on a
    signature that is not ASCII and on a body that is not UTF-8.
    """
    timestamp = request.headers.get("x-slack-request-timestamp")
    signature = request.headers.get("x-slack-signature", "")
    if unix_seconds(timestamp) is None:
        return "X-Slack-Request-Timestamp must be the unix time the request was signed at"
    if not _SLACK_SIGNATURE.fullmatch(signature):
        return "X-Slack-Signature must be v0=<64 hex digits>"
    try:
        body.decode("utf-8")  # slack_sdk's verifier decodes the body first, and raises on any other
    except UnicodeDecodeError:
        return "invalid request: the body is not UTF-8 text, as every Slack request is"
    if not signing_secret or not SignatureVerifier(signing_secret).is_valid(body, timestamp, signature):
        return "invalid request: X-Slack-Signature does not match the body, or was made over five minutes ago"
    return None


def json_body(body: bytes) -> Any:
    """The body's JSON value; :class:`NestedTooDeep` or ValueError (not JSON) with the reason otherwise."""
    refuse_deep_json(body)
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"body is not JSON ({error})") from None


def refuse_deep_json(body: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`NestedTooDeep` when the JSON text opens more than ``limit`` arrays or objects inside
    one another (brackets inside strings do not count), without parsing or recursing.

    Each pass drops every innermost ``[]`` (objects count as arrays here), so a
    body nested at most ``limit`` deep is down to its unmatched brackets after
    ``limit`` passes; a pair still left nested deeper, and more than ``limit``
    unclosed opens would make the parser recurse that deep before it fails.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return  # too few brackets to nest that deep: most bodies
    brackets = _JSON_STRING.sub(b"", body).translate(_CURLY_AS_SQUARE, _NOT_A_BRACKET)
    for _ in range(limit):
        shallower = brackets.replace(b"[]", b"")
        if shallower == brackets:
            break
        brackets = shallower
    if b"[]" in brackets or brackets.count(b"[") > limit:
        raise NestedTooDeep(f"JSON nested too deep: more than {limit} arrays or objects inside one another")
