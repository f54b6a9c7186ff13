"""Words, identifiers and paths pulled out of incident and change text.

Responders write ``HTTP/2 upload hangs`` while the change says ``lib/http2.c``
and ``h2_send_data()``: matching needs code-aware splitting (camelCase,
snake_case, path separators) on both sides, done the same way everywhere.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import PurePosixPath

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*|[0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\(\))?")
# Each alternative starts only where a run of its characters starts: tried from inside a run, it
# would read to the run's end and back again at every position (a 40 kB token took 5 s, 1 MB hours).
_PATH = re.compile(
    r"(?<![A-Za-z0-9_.-])(?:[A-Za-z0-9_.-]+/)+[A-Za-z0-9_.-]+"
    r"|(?<![A-Za-z0-9_-])[A-Za-z0-9_-]+\.(?:c|h|cc|cpp|py|go|rs|js|ts|sh|pl|am|in|txt|md|yml|yaml|json|toml|cfg|conf|mk)\b"
)
_PREFIX = re.compile(r"^\s*([A-Za-z0-9_./+-]{1,40}(?:\s*,\s*[A-Za-z0-9_./+-]{1,40})*)\s*:\s+")

STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does doing for from had has have he
    her his how i if in into is it its itself just may me more most my no nor not now of off on
    once only or other our out over own same she should so some such than that the their them
    then there these they this those through to too under until up very was we were what when
    where which while who whom why will with would you your also after before because since
    again all any both each few further here during about above below between against s t d ll
    re ve m o y get got make made use used using one two new now still however instead without
    within via per let lets let's like need needs needed""".split()
)


def split_identifier(word: str) -> list[str]:
    """``h2_send_data`` -> h2, send, data; ``getHostName`` -> get, host, name."""
    parts: list[str] = []
    for chunk in re.split(r"[_\W]+", word):
        if chunk:
            parts.extend(_CAMEL.split(chunk))
    return [part.lower() for part in parts if part]


@lru_cache(maxsize=200_000)
def _word_tokens(word: str) -> tuple[str, ...]:
    lowered = word.lower()
    pieces = split_identifier(word)
    if len(pieces) > 1:
        return (lowered, *pieces)
    return (lowered,)


def tokens(text: str) -> list[str]:
    """Lower-case search terms with identifiers also split into their parts; stopwords dropped."""
    found: list[str] = []
    for raw in re.findall(r"[A-Za-z0-9_]+", text):
        for token in _word_tokens(raw):
            if len(token) > 1 and token not in STOPWORDS and not token.isdigit():
                found.append(token)
    return found


def path_tokens(paths: list[str] | tuple[str, ...]) -> list[str]:
    """Every directory name, file stem and their identifier parts, once per path."""
    found: list[str] = []
    for path in paths:
        pure = PurePosixPath(path)
        pieces = [*pure.parent.parts, pure.stem] if pure.parent.parts else [pure.stem]
        for piece in pieces:
            found.extend(tokens(piece.replace("-", "_")))
    return found


def identifiers(text: str) -> set[str]:
    """Code-looking names a responder pasted: snake_case, camelCase, ``call()`` and file paths."""
    found: set[str] = set()
    for match in _IDENTIFIER.findall(text):
        name = match.removesuffix("()")
        if match.endswith("()") or "_" in name.strip("_") or _CAMEL.search(name):
            if len(name) > 2:
                found.add(name.lower())
    for path in _PATH.findall(text):
        found.add(path.lower())
    return found


def mentioned_paths(text: str) -> list[str]:
    """File paths or file names written in the text."""
    return [path for path in _PATH.findall(text)]


def title_subsystem(title: str) -> str:
    """The ``http:`` or ``net/mlx5:`` prefix many projects put on commit titles, or ''."""
    match = _PREFIX.match(title)
    return match.group(1).lower() if match else ""


def path_units(path: str) -> list[str]:
    """The places a file belongs to: each ancestor directory and the file's stem.

    ``lib/vtls/openssl.c`` -> ``lib``, ``lib/vtls``, ``lib/vtls/openssl``; a header
    and its source share the stem, so both count as one component.
    """
    pure = PurePosixPath(path)
    units: list[str] = []
    parts = pure.parent.parts
    for depth in range(1, len(parts) + 1):
        units.append("/".join(parts[:depth]))
    units.append(str(pure.with_suffix("")) if pure.suffix else str(pure))
    return units
