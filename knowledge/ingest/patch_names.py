"""The functions a change touched and the identifiers it added or removed, read from its patch.

Reports often paste a stack trace or an error message: the names in it are
the names in the code, not in the commit message. git's hunk headers
(``@@ -120 +120 @@ static CURLcode http_done(struct Curl_easy *data,``) say
which function each changed line sits in (git's default funcname heuristic
finds C functions; a repository's diff drivers find others), and the changed
lines hold the names the change brought in or took out.

Bounded so that a generated or vendored file cannot stall ingestion or flood
what a change is matched by: only the first ``MAX_PATCH_BYTES`` of a change's
patch are read (the reader discards the rest unread by Python), and at most
``MAX_NAMES`` names of each kind, of at most ``MAX_NAME_CHARS`` characters,
are kept: functions in the order the patch shows them, identifiers those it
added first, then those it removed.
"""

from __future__ import annotations

import re

MAX_PATCH_BYTES = 64 * 1024
MAX_NAMES = 32
MAX_NAME_CHARS = 64

# A name directly followed by "(": C and most languages write calls and definitions so, prose does not.
_CALLED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\(")
_HUNK_HEADER = re.compile(rb"^@@ [^\n]*?@@(.*)$", re.MULTILINE)
_ADDED = re.compile(rb"^\+(.*)$", re.MULTILINE)
_REMOVED = re.compile(rb"^-(.*)$", re.MULTILINE)
# Bytes that cannot be part of a name become spaces, so names are what ``split`` leaves (C speed).
_NAME_BYTES = bytes(byte if chr(byte).isascii() and (chr(byte).isalnum() or chr(byte) == "_") else 32 for byte in range(256))
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_CAMEL = re.compile(r"[a-z0-9][A-Z]")
_NOT_FUNCTIONS = frozenset(
    "if for while switch return sizeof typeof defined do else case catch alignof offsetof __attribute__ "
    "__declspec __typeof__ decltype static_assert _Static_assert elif".split()
)


def code_like(name: str) -> bool:
    """``Curl_http_done``, ``CURLE_OK``, ``getHostName``: telling on their own, unlike ``len`` or ``data``."""
    return len(name) <= MAX_NAME_CHARS and _NAME.fullmatch(name) is not None and (
        "_" in name.strip("_") or _CAMEL.search(name) is not None
    )


def hunk_function(context: str) -> str | None:
    """The function a hunk header's context line names (``static int h2_send(struct h2 *h2,`` -> ``h2_send``)."""
    for match in _CALLED.finditer(context):
        if match.group(1) not in _NOT_FUNCTIONS and len(match.group(1)) <= MAX_NAME_CHARS:
            return match.group(1)
    return None


def _words(lines: list[bytes]) -> dict[bytes, None]:
    return dict.fromkeys(b"\n".join(lines).translate(_NAME_BYTES).split())


def patch_names(patch: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(functions touched, identifiers added or removed) of a ``git log --patch`` (context lines are skipped).

    An identifier counts as added or removed when it is on the added lines and
    not the removed ones, or the other way round: renaming an argument of a
    call leaves the call's name out, adding the call puts it in."""
    pieces = _HUNK_HEADER.split(patch)  # text before the first hunk, then (context, changed lines) per hunk
    functions: dict[str, None] = {}
    for context in pieces[1::2]:
        function = hunk_function(context.decode("utf-8", errors="replace"))
        if function and len(functions) < MAX_NAMES:
            functions.setdefault(function, None)
    # Not the next file's "--- a/..." and "+++ b/..." lines after a hunk.
    changed = b"".join(lines.split(b"\ndiff ", 1)[0] for lines in pieces[2::2])
    added, removed = _words(_ADDED.findall(changed)), _words(_REMOVED.findall(changed))
    names: list[str] = []
    for word in [*(word for word in added if word not in removed), *(word for word in removed if word not in added)]:
        name = word.decode("ascii")
        if code_like(name):
            names.append(name)
            if len(names) == MAX_NAMES:
                break
    return tuple(functions), tuple(names)
