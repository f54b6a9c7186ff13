"""What a request to the bot's HTTP server must pass before its body is trusted: size caps, signatures, tokens.

A body is read in chunks and refused the moment it passes its cap, whatever
``Content-Length`` says (or does not say, for a chunked upload), so an
anonymous multi-megabyte POST costs the server the cap, not the upload.

Every header byte is the sender's to choose: a timestamp that is no number, or
a signature with bytes outside ASCII (Starlette decodes headers as latin-1), is
a forgery like any other and must be refused as one, not raise.
"""

from __future__ import annotations

import hmac
import re

from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request

_SLACK_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
UNIX_SECONDS_DIGITS = 12  # far beyond any time a sender signs at, far below int()'s 4300-digit limit


class BodyTooLarge(Exception):
    """The body went past its cap; answer 413 without reading the rest."""


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
    """``Authorization: Bearer <token>``, compared in constant time."""
    given = request.headers.get("authorization", "")
    return given.startswith("Bearer ") and same_secret(token, given[7:])


def slack_refusal(request: Request, body: bytes, signing_secret: str) -> str | None:
    """Why the request is not Slack's, or None when its ``X-Slack-Signature`` over the raw body is
    right and was made less than five minutes ago.

    Checked before anything parses the body, so a forged request costs an HMAC,
    not a parse. Without a signing secret nothing is taken as signed. The
    headers' form is checked here because slack_sdk's verifier raises on a
    timestamp that is no number and on a signature that is not ASCII.
    """
    timestamp = request.headers.get("x-slack-request-timestamp")
    signature = request.headers.get("x-slack-signature", "")
    if unix_seconds(timestamp) is None:
        return "X-Slack-Request-Timestamp must be the unix time the request was signed at"
    if not _SLACK_SIGNATURE.fullmatch(signature):
        return "X-Slack-Signature must be v0=<64 hex digits>"
    if not signing_secret or not SignatureVerifier(signing_secret).is_valid(body, timestamp, signature):
        return "invalid request: X-Slack-Signature does not match the body, or was made over five minutes ago"
    return None
