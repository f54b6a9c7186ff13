"""One HTTP answer bounded as a whole, in time and in size, for the httpx and httpx2 clients alike.

httpx's timeouts (httpx2's too) are per socket read: a server trickling its
answer a byte at a time within the read timeout, or sending one without end,
would hold the caller for ever while the client buffers it all in memory. A
client that sends with ``stream=True`` and hands the response to
:func:`bound_answer` reads the body within a deadline and a byte limit instead.
The headers are still bounded per read only: neither library offers a way to
bound their time, so a read the deadline passes in may overrun it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import httpx
import httpx2

IDENTITY_ENCODING = {"Accept-Encoding": "identity"}
"""Headers that ask for an answer uncompressed: a compressed one's size says nothing of what it unpacks to."""

Answer = TypeVar("Answer", httpx.Response, httpx2.Response)


@dataclass(frozen=True)
class AnswerBounds:
    """How many bytes one answer may carry (``limit_name``: the setting to name), and the errors its
    caller's callers already recover from: ``too_slow()`` past the deadline, ``too_large(why)`` past the
    size (``why`` says "is over N bytes (LIMIT_NAME)" or "came compressed...")."""

    max_bytes: int
    limit_name: str
    too_slow: Callable[[], Exception]
    too_large: Callable[[str], Exception]


class BoundedBody(httpx.SyncByteStream, httpx2.SyncByteStream):
    """An answer's body, cut off past its deadline or its byte limit (either library's stream, as the
    response it replaces the stream of checks)."""

    def __init__(self, body: httpx.SyncByteStream | httpx2.SyncByteStream, deadline: float, bounds: AnswerBounds) -> None:
        self.body, self.deadline, self.bounds = body, deadline, bounds

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self.body:
            size += len(chunk)
            if size > self.bounds.max_bytes:
                raise self.bounds.too_large(f"is over {self.bounds.max_bytes:,} bytes ({self.bounds.limit_name})")
            if time.monotonic() > self.deadline:
                raise self.bounds.too_slow()
            yield chunk

    def close(self) -> None:
        self.body.close()


def bound_answer(response: Answer, bounds: AnswerBounds, deadline: float, *, read: bool) -> Answer:
    """``response`` (sent with ``stream=True``, its headers in by now) with its body bounded, read whole
    when ``read``; an answer that came compressed though asked not to is refused. Closed if refused."""
    try:
        if response.headers.get("Content-Encoding", "identity").lower() != "identity":
            raise bounds.too_large("came compressed, though asked not to; its size is unknown")
        response.stream = BoundedBody(response.stream, deadline, bounds)  # type: ignore[arg-type, assignment]
        if read:
            response.read()
    except BaseException:
        response.close()
        raise
    return response

