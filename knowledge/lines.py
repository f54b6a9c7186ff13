"""Lines of an uploaded or ingested file, each at most a fixed size, read without holding a longer one.

``for line in handle`` keeps reading until it meets a newline, so one line of a
few GiB (a file with no newline at all) is read whole into memory before anyone
can look at it. :func:`capped_lines` reads each line up to ``limit`` bytes; a
longer one is read on in fixed chunks and thrown away, and only its line number
comes back, for the caller to refuse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

_CHUNK = 1 << 20


def capped_lines(stream: BinaryIO, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number from 1, the line's bytes with its newline) for each line; ``None`` for a line
    over ``limit`` bytes, not counting its newline."""
    line_no = 0
    while line := stream.readline(limit + 1):
        line_no += 1
        if len(line) <= limit or (len(line) == limit + 1 and line.endswith(b"\n")):
            yield line_no, line
            continue
        while not line.endswith(b"\n") and (line := stream.readline(_CHUNK)):
            pass
        yield line_no, None


def describe_limit(limit: int) -> str:
    """``4 MiB`` for 4 * 2**20: how a refusal names the limit."""
    return f"{limit >> 20} MiB" if limit % (1 << 20) == 0 else f"{limit} bytes"


def json_line(raw: bytes) -> Any:
    """One line's JSON value; ValueError says why a line is not one (not UTF-8, not JSON, nested too deeply)."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON ({error.msg})") from None
    except RecursionError:  # json recurses once per level: [[[[...]]]] a few thousand deep
        raise ValueError("JSON nested too deeply") from None
