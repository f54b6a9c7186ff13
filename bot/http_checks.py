"""What a request to the bot's HTTP server must pass before its body is trusted: size caps, signatures, tokens.

A body is read in chunks and refused the moment it passes its cap, whatever
``Content-Length`` says (or does not say, for a chunked upload), so an
anonymous multi-megabyte POST costs the server the cap, not the upload.
"""

from __future__ import annotations

import hmac

from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request


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


def bearer_matches(request: Request, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    given = request.headers.get("authorization", "")
    return given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode())


def signed_by_slack(request: Request, body: bytes, signing_secret: str) -> bool:
    """Slack's ``X-Slack-Signature`` over the raw body, made less than five minutes ago.

    Checked before anything parses the body, so a forged request costs an HMAC,
    not a parse. Without a signing secret nothing is taken as signed.
    """
    if not signing_secret:
        return False
    return SignatureVerifier(signing_secret).is_valid(
        body=body,
        timestamp=request.headers.get("x-slack-request-timestamp"),
        signature=request.headers.get("x-slack-signature"),
    )
