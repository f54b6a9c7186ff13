"""Which earlier change a commit message says it repairs, and the message as an incident report.

Fix commits name what they repair in a few conventional ways: a ``Fixes:
<sha> ("title")`` trailer (Linux, DPDK, haproxy), ``This reverts commit <sha>``
or a ``Revert "<title>"`` subject, and prose such as "introduced by <sha>",
"broken by <sha>", "regression since <sha>". A sha mentioned in any other way
("since <sha>", "after commit <sha>") counts only in a commit that says it
fixes something. ``git cherry-pick -x`` lines name a copy, not a culprit.

The report a responder would have written is the message with every named
change replaced by "a recent change" and the trailers dropped: the answer must
not be spelled out in the question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_MESSAGE_CHARS = 64 * 1024

FIXES = "fixes"
REVERT = "revert"
REGRESSION = "regression"
SINCE = "since"

_SHA = r"(?<![0-9A-Za-z/])(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}(?![0-9A-Za-z])"
# A sha of digits alone (one in 40 abbreviations) counts only after "commit", so dates and numbers do not.
_DIGITS_SHA = r"(?<=[Cc]ommit )[0-9]{7,40}(?![0-9A-Za-z])"
_SHA_TOKEN = re.compile(f"{_SHA}|{_DIGITS_SHA}")
_FIXES_TRAILER = re.compile(r"^\s*Fixes:\s*(?:commit\s+)?(" + _SHA + ")", re.IGNORECASE | re.MULTILINE)
_REVERTS = re.compile(r"\breverts?\s+(?:commit\s+)?(" + _SHA + ")", re.IGNORECASE)
_CHERRY_PICK = re.compile(r"\(?cherry[- ]picked from commit\s+" + _SHA + r"\)?", re.IGNORECASE)
_REVERT_TITLE = re.compile(r'^(?:[A-Z]+(?:/[A-Z]+)?:\s*)?Revert\s+"(.+)"\s*$')
_REGRESSION_WORDS = re.compile(
    r"\b(?:introduc\w*|regress\w*|broke|broken|breaks?|breakage|caus\w*|culprit|bug\s+in)\b", re.IGNORECASE
)
_FIX_WORDS = re.compile(
    r"\b(?:fix\w*|bug\w*|regress\w*|broke\w*|crash\w*|wrong\w*|incorrect\w*|fail\w*|leak\w*|segfault\w*|"
    r"issue\w*|problem\w*|error\w*|revert\w*|correct\w*|mistake\w*|oops|typo\w*|unbreak\w*|restore\w*|"
    r"warn\w*|silenc\w*)\b",
    re.IGNORECASE,
)
_MENTION = re.compile(
    r"(?:\b(?:the\s+)?(?:commit|change|patch)\s+)?(?:" + _SHA + "|" + _DIGITS_SHA + r")(?:\s*\(\s*\"[^\"]*\"?\s*\)|\s*\([^()\n]{0,200}\))?",
    re.IGNORECASE,
)
_TRAILER = re.compile(r"^[A-Za-z][A-Za-z0-9-]*(?:-by|-to)?:\s")
_KNOWN_TRAILERS = re.compile(
    r"^(?:Fixes|Signed-off-by|Reviewed-by|Acked-by|Tested-by|Reported-by|Suggested-by|Helped-by|Co-authored-by|"
    r"Cc|Link|Closes|Bug|Ref|References|See-also|Mentored-by|Original-patch-by|Based-on-patch-by|Change-Id|"
    r"Noticed-by|Requested-by|Thanks-to|Assisted-by|Approved-by|Backport|Fixes-issue)\s*:",
    re.IGNORECASE,
)
_REVERT_WORD = re.compile(r"\s*\brevert(?:s|ed|ing)?\b", re.IGNORECASE)
_CONTEXT = 60


@dataclass(frozen=True)
class Link:
    """One named change: its (possibly abbreviated) sha, or for ``Revert "title"`` its title."""

    kind: str
    sha: str = ""
    title: str = ""


def _title_and_body(message: str) -> tuple[str, str]:
    parts = message.strip().split("\n\n", 1)
    title = " ".join(line.strip() for line in parts[0].splitlines())
    return title, parts[1] if len(parts) > 1 else ""


def says_it_fixes(message: str) -> bool:
    """Whether the message reads as repairing something (a looser link needs it to count)."""
    return bool(_FIX_WORDS.search(message[:MAX_MESSAGE_CHARS]))


def find_links(message: str) -> list[Link]:
    """Every change the message names as the one it repairs, strongest kind first per sha."""
    message = _CHERRY_PICK.sub(" ", message[:MAX_MESSAGE_CHARS])
    found: dict[str, Link] = {}

    def add(link: Link) -> None:
        key = link.sha or f"title:{link.title}"
        found.setdefault(key, link)

    for match in _FIXES_TRAILER.finditer(message):
        add(Link(FIXES, sha=match.group(1).lower()))
    for match in _REVERTS.finditer(message):
        add(Link(REVERT, sha=match.group(1).lower()))
    title, _body = _title_and_body(message)
    reverted = _REVERT_TITLE.match(title)
    if reverted and not any(link.kind == REVERT for link in found.values()):
        add(Link(REVERT, title=reverted.group(1).strip()))
    fix_like = says_it_fixes(message)
    for match in _SHA_TOKEN.finditer(message):
        sha = match.group(0).lower()
        if sha in found:
            continue
        around = message[max(0, match.start() - _CONTEXT) : match.end() + _CONTEXT]
        if _REGRESSION_WORDS.search(around):
            add(Link(REGRESSION, sha=sha))
        elif fix_like:
            add(Link(SINCE, sha=sha))
    return list(found.values())


def _without_trailers(body: str) -> str:
    """The body less trailer lines (``Fixes:``, ``Signed-off-by:`` and their wrapped values),
    ``This reverts commit`` and cherry-pick notes."""
    kept: list[str] = []
    open_parens = 0
    for line in body.splitlines():
        if open_parens > 0:
            open_parens += line.count("(") - line.count(")")
            continue
        stripped = line.strip()
        if _KNOWN_TRAILERS.match(stripped) or (_TRAILER.match(stripped) and "-by:" in stripped):
            open_parens = max(stripped.count("(") - stripped.count(")"), 0)
            continue
        if _REVERTS.search(stripped) and stripped.lower().startswith("this reverts"):
            continue
        kept.append(line)
    return _CHERRY_PICK.sub(" ", "\n".join(kept))


def _replace_mentions(text: str, titles: list[str]) -> str:
    for title in titles:
        if len(title) >= 12:
            text = text.replace(f'"{title}"', "a recent change").replace(title, "a recent change")

    def recent(match: re.Match[str]) -> str:
        before = text[: match.start()].rstrip()
        starts_sentence = not before or before[-1] in ".!?\n"
        return "A recent change" if starts_sentence else "a recent change"

    return _MENTION.sub(recent, text)


def incident_report(message: str, link_kinds: list[str], culprit_titles: list[str]) -> tuple[str, str]:
    """(title, text) as a responder could have reported it: named changes become "a recent
    change", trailers go, and a revert loses its subject (the reverted change's own title)."""
    title, body = _title_and_body(message[:MAX_MESSAGE_CHARS])
    body = _replace_mentions(_without_trailers(body), culprit_titles)
    if REVERT in link_kinds:
        title = ""
        body = _REVERT_WORD.sub("", body)
    else:
        title = _replace_mentions(title, culprit_titles)
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in body.strip().splitlines()]
    return title.strip(), re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
