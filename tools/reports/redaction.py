"""Remove personal data and secrets from user reports before they are stored or sent to a model.

Each kind of secret becomes a readable placeholder (``[email]``, ``[phone]``...),
so a responder still sees what the user meant ("login fails for [email]").
Order matters: URLs first (they may hold e-mails and tokens), then keys, then
numbers, so a card number is never half-eaten by the phone pattern.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, urlsplit

_SECRET_PARAMS = re.compile(
    r"(token|key|sig|signature|secret|password|passwd|pwd|auth|session|code|credential)", re.I
)
_URL = re.compile(r"\b(?:https?|ftp|wss?)://[^\s<>\"']+", re.I)
_API_KEY = re.compile(
    r"\b(?:sk-(?:proj-|live-|test-)?[A-Za-z0-9_\-]{16,}"
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|AIza[0-9A-Za-z_\-]{35}"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})"
)
_HEX_SECRET = re.compile(r"\b[0-9a-fA-F]{32,}\b")
_B64_SECRET = re.compile(r"(?<![\w/+])[A-Za-z0-9+/_\-]{32,}={0,2}(?![\w/+])")
_EMAIL = re.compile(r"\b[\w.+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
_IPV6_CANDIDATE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|\d+\.\d+\.\d+\.\d+)(?![\w:])")
_IPV4 = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b")
_CARD_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ \-]?){12,18}\d(?!\d)")
_PHONE_CANDIDATE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().\-]{6,}\d(?!\d)")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def redact(text: str) -> str:
    """The report with e-mails, phones, IPs, tokenised URLs, API keys and card numbers replaced."""
    text = _URL.sub(_redact_url, text)
    text = _API_KEY.sub("[api-key]", text)
    text = _HEX_SECRET.sub("[secret]", text)
    text = _B64_SECRET.sub(_redact_b64, text)
    text = _EMAIL.sub("[email]", text)
    text = _IPV6_CANDIDATE.sub(_redact_ipv6, text)
    text = _IPV4.sub("[ip]", text)
    text = _CARD_CANDIDATE.sub(_redact_card, text)
    return _PHONE_CANDIDATE.sub(_redact_phone, text)


def _redact_url(match: re.Match[str]) -> str:
    """Keep scheme, host and path (they say what broke); drop credentials and secret parameters."""
    url = match.group(0)
    trailing = ""
    while url and url[-1] in ".,;:!?)]":
        trailing, url = url[-1] + trailing, url[:-1]
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "[url]" + trailing
    netloc = ("[credentials]@" if parts.username or parts.password else "") + host + port
    query_pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(
        f"{name}={'[token]' if _SECRET_PARAMS.search(name) else value}" for name, value in query_pairs
    )
    rebuilt = f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    return rebuilt + trailing


def _redact_b64(match: re.Match[str]) -> str:
    """A long run of letters and digits is a secret only when it mixes cases and digits."""
    token = match.group(0)
    has_kinds = sum(
        (any(c.islower() for c in token), any(c.isupper() for c in token), any(c.isdigit() for c in token))
    )
    return "[secret]" if has_kinds == 3 else token


def _redact_ipv6(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(match.group(0))
    except ValueError:
        return match.group(0)
    return "[ip]"


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _redact_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[card]" if 13 <= len(digits) <= 19 and _luhn_valid(digits) else match.group(0)


def _redact_phone(match: re.Match[str]) -> str:
    """Seven to fifteen digits, not a date; version strings and counts are too short to match."""
    candidate = match.group(0)
    digits = re.sub(r"\D", "", candidate)
    if not 7 <= len(digits) <= 15 or _ISO_DATE.match(candidate):
        return candidate
    if "." in candidate and not candidate.startswith("+") and len(digits) < 10:
        return candidate
    return "[phone]"
