"""Users' words and category names as a Slack message shows them: escaped, on one line, short.

Reports are written by anyone who can reach the feedback channel or ``POST
/reports``, and category names come from labeled files and classifiers; the
digest and the spike alerts quote both. Unescaped, ``<!channel>`` in a report
pinged a whole channel and ``<https://…|text>`` made a link; a line break
wrote outside a quote or split the digest's sections; a 5 MiB report made Slack
refuse the whole message.
"""

from __future__ import annotations

import unicodedata

NAME_CHARS = 100  # a category name in a digest line, an alert or a chart's legend


def one_line(text: str, limit: int) -> str:
    """``text`` with line breaks and control characters as single spaces, cut to ``limit`` characters."""
    printable = "".join(c if c == " " or unicodedata.category(c)[0] not in "CZ" else " " for c in text)
    line = " ".join(printable.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def mrkdwn(text: str) -> str:
    """Text in Slack mrkdwn: ``& < >`` are control characters there."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
