"""Remove personal data and secrets from user reports before they are stored or sent to a model.

Each kind of secret becomes a readable placeholder (``[email]``, ``[phone]``...),
so a responder still sees what the user meant ("login fails for [email]").

Every pattern here is compiled by RE2 (``google-re2``), which matches in time
linear in the text and refuses the constructs that backtrack: no report, however
it is crafted, can make a pattern quadratic (the old e-mail pattern took 8 s on
48 KB of ``a.``). A pattern only finds candidates; a recogniser that knows the
kind then decides on that candidate alone (Luhn and issuer ranges for cards,
mod-97 for IBANs, check letters and digits for national IDs, libphonenumber for
phones, :mod:`ipaddress` for IPs), so the whole pass stays linear. Phones are
the one costly check (about 0.15 ms a region): past
:data:`PHONE_CHECKS_PER_REPORT` a report's remaining phone-shaped numbers are
redacted without asking the library.

Order matters: private keys and URLs first (they hold tokens, e-mails and IPs
that must not be half-eaten), then keys, then the numbers: national IDs (each
checked) before cards and phones, which would read a spaced NIR, cards before phones.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import date
from functools import lru_cache
from typing import Protocol
from urllib.parse import unquote, urlsplit

import phonenumbers
import re2


class Found(Protocol):
    """What a pattern found (google-re2's match object, which the package does not export as a type)."""

    string: str

    def group(self, index: int = 0) -> str: ...
    def start(self) -> int: ...
    def end(self) -> int: ...


PHONE_CHECKS_PER_REPORT = 256
"""Library checks of phone candidates per report; beyond this a phone-shaped number is redacted unchecked."""

_PRIVATE_KEY = re2.compile(r"-----BEGIN[A-Z ]*PRIVATE KEY-----[\s\S]*?-----END[A-Z ]*PRIVATE KEY-----")
_URL = re2.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s<>\"'`]+")
_AUTH_SCHEME = re2.compile(r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9\-._~+/]+=*)")
_ASSIGNMENT = re2.compile(
    r"(?i)([A-Za-z0-9_\-]*?(?:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key))"
    r"([\"']?\s*[:=]\s*)(\"[^\"\n]+\"|'[^'\n]+'|[^\s\"',;\[\]<>]+)"
)
_SECRET_SENTENCE = re2.compile(
    r"(?i)\b(password|passwd|passcode|pass code|pin|pin code|pin number|token|secret|api key)"
    r"(\s+(?:is|was)\s*:?\s*|\s*[:=]\s*)(\"[^\"\n]+\"|'[^'\n]+'|[^\s\"'\[\]<>]+)"
)
_API_KEY = re2.compile(
    r"\b(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}"  # Stripe secret and restricted keys
    r"|whsec_[A-Za-z0-9]{20,}"
    r"|sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{16,}"  # OpenAI, Anthropic
    r"|xox[abposre]-[A-Za-z0-9\-]{10,}|xapp-[0-9]-[A-Za-z0-9\-]{10,}"  # Slack
    r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_\-]{20,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|AIza[0-9A-Za-z_\-]{35}|ya29\.[0-9A-Za-z_\-]{20,}"
    r"|SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"  # SendGrid
    r"|npm_[A-Za-z0-9]{36}|pypi-[A-Za-z0-9_\-]{50,}|hf_[A-Za-z0-9]{30,}"
    r"|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}|dop_v1_[a-f0-9]{64}|sq0(?:atp|csp)-[0-9A-Za-z_\-]{22,}"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})"  # JWT
)
_HEX_SECRET = re2.compile(r"\b[0-9a-fA-F]{32,}\b")
_B64_SECRET = re2.compile(r"[A-Za-z0-9+/_\-]{32,}={0,2}")
_EMAIL = re2.compile(  # a dotted domain, or the two without a dot that mail takes: localhost and an address literal
    r"[\p{L}\p{M}\p{N}._%+\-]+@(?:[\p{L}\p{M}\p{N}\-]+(?:\.[\p{L}\p{M}\p{N}\-]+)*\.(?:xn--[a-z0-9\-]+|\p{L}[\p{L}\p{M}]+)"
    r"|(?i:localhost)\b|\[(?i:ipv6:)?[0-9A-Fa-f:.]+\])"
)
_SPELLED_DOT = r"(?:[ \t]*[(\[{<][ \t]*(?i:dot)[ \t]*[)\]}>][ \t]*|[ \t]+(?i:dot)[ \t]+)"  # " (dot) ", " dot "
_DOMAIN_DOT = r"(?:\.|" + _SPELLED_DOT + ")"
_OBFUSCATED_EMAIL = re2.compile(  # jane(at)example.com, jane [at] example [dot] com, jane at example dot com
    r"[\p{L}\p{M}\p{N}._%+\-]+(?:" + _SPELLED_DOT + r"[\p{L}\p{M}\p{N}_%+\-]+)*"
    r"([ \t]*[(\[{<][ \t]*(?i:at)[ \t]*[)\]}>][ \t]*|[ \t]+(?i:at)[ \t]+)"  # the "at", then the domain
    r"([\p{L}\p{M}\p{N}\-]+(?:" + _DOMAIN_DOT + r"[\p{L}\p{M}\p{N}\-]+)*" + _DOMAIN_DOT + r"\p{L}[\p{L}\p{M}]+)"
)
_IBAN = re2.compile(r"(?i)\b[A-Z]{2}[0-9]{2}(?:[ \-]?[A-Z0-9]){11,30}\b")
_IPV6_CANDIDATE = re2.compile(r"[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f.:]*")
_IPV4_CANDIDATE = re2.compile(r"\b[0-9]+(?:\.[0-9]+){3,}\b")
_CARD_CANDIDATE = re2.compile(r"[0-9](?:[ .\-/]?[0-9]){12,}")
_PHONE_CANDIDATE = re2.compile(r"(?:\(?\+\(?|\(|\b)[0-9][0-9 ().\-]*[0-9]")
_SLASHED_PHONE_CANDIDATE = re2.compile(r"(?:\(?\+\(?|\(|\b)[0-9][0-9 ().\-]*/[0-9 ().\-/]*[0-9]")
_SSN = re2.compile(r"\b([0-9]{3})([ \-])([0-9]{2})([ \-])([0-9]{4})\b")
_SPANISH_ID = re2.compile(r"(?i)\b([XYZ]-?[0-9]{7}|[0-9]{8}|[0-9]{2}\.[0-9]{3}\.[0-9]{3})-?([A-Z])\b")  # DNI and NIE
_NATIONAL_INSURANCE = re2.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]\b")
_CODICE_FISCALE = re2.compile(
    r"(?i)\b[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]\b"
)
_STEUER_ID = re2.compile(r"\b[1-9][0-9] ?[0-9]{3} ?[0-9]{3} ?[0-9]{3}\b")
_NIR = re2.compile(r"\b[12] ?[0-9]{2} ?(?:0[1-9]|1[0-2]|20) ?(?:[0-9]{2}|2[AB]) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}\b")
_BSN = re2.compile(r"\b[0-9]{4}\.?[0-9]{2}\.?[0-9]{3}\b")
_PESEL = re2.compile(r"\b[0-9]{11}\b")
_ISO_DATE = re2.compile(r"^[0-9]{4}[\-/.][0-9]{1,2}[\-/.][0-9]{1,2}|^[0-9]{1,2}[\-/.][0-9]{1,2}[\-/.][0-9]{4}")
_DATE_OR_TIME_HEAD = re2.compile(
    r"^(?:[0-9]{4}[\-/.][0-9]{1,2}[\-/.][0-9]{1,2}|[0-9]{1,2}[\-/.][0-9]{1,2}[\-/.](?:[0-9]{4}|[0-9]{2})"
    r"|[0-9]{1,2}\.[0-9]{1,2}\.|([0-9]{2}\.[0-9]{1,9}|[0-9]{1,9})) +"  # a date, or the group: the end of a time
)

PATTERNS = (
    _PRIVATE_KEY, _URL, _AUTH_SCHEME, _ASSIGNMENT, _API_KEY, _HEX_SECRET, _B64_SECRET, _EMAIL, _OBFUSCATED_EMAIL,
    _SECRET_SENTENCE, _IBAN,
    _IPV6_CANDIDATE, _IPV4_CANDIDATE, _CARD_CANDIDATE, _SLASHED_PHONE_CANDIDATE, _PHONE_CANDIDATE, _SSN, _ISO_DATE,
    _DATE_OR_TIME_HEAD, _SPANISH_ID, _NATIONAL_INSURANCE, _CODICE_FISCALE, _STEUER_ID, _NIR, _BSN,
    _PESEL,
)  # fmt: skip
"""Every pattern the redaction runs: all RE2, so none is worse than linear (``tests/reports/test_redaction.py``)."""

_SECRET_PARAM_WORDS = ("token", "key", "sig", "secret", "password", "passwd", "pwd", "auth", "session", "code", "credential")
_TOKEN_PATH_WORDS = frozenset({
    "reset", "reset-password", "password-reset", "reset_password", "verify", "verify-email", "confirm",
    "confirmation", "activate", "activation", "invite", "invitation", "magic", "magic-link", "token", "tokens",
    "unsubscribe", "login", "signin", "sso", "share", "recover", "recovery",
})  # fmt: skip
_WEBHOOK_PATHS = {"hooks.slack.com": "/services/", "discord.com": "/api/webhooks/", "discordapp.com": "/api/webhooks/"}
_DIGEST_CONTEXT = ("sha", "commit", "digest", "trace", "span", "request", "correlation", "checksum", "md5", "etag", "build")
_VERSION_WORDS = frozenset({"version", "ver", "v", "build", "release", "app", "ios", "android"})
_PHONE_WORDS = frozenset({
    "call", "phone", "tel", "mobile", "cell", "sms", "whatsapp", "fax", "text", "reach", "contact", "telephone",
    "landline", "cellphone",
    "telefon", "telefonnummer", "handy", "handynummer", "mobil", "mobilnummer", "rufnummer", "festnetz", "anrufen",  # German
    "teléfono", "telefono", "tlf", "tfno", "móvil", "movil", "celular", "llámame", "llamame", "llamar",  # Spanish
    "tél", "téléphone", "portable", "appeler", "joindre",  # French
})  # fmt: skip
_PHONE_PARAMS = frozenset({"phone", "tel", "mobile", "cell", "msisdn", "whatsapp", "fax", "telefon", "handy", "movil", "telefono"})
_ID_WORDS = frozenset({"isbn", "order", "id", "ids", "invoice", "ticket", "ref", "sku", "ean", "upc", "build", "version"})
_TRUNK_REGIONS = ("GB", "DE", "FR", "IT", "NL", "AU", "JP", "IN")  # national numbers written with a leading 0
_PLAIN_REGIONS = ("US", "IN")  # national numbers written without one: NANP and Indian mobiles
_SPANISH_GROUPS = ((3, 2, 2, 2), (2, 3, 2, 2))  # Spain has no trunk 0; "810 12 47 43", "91 234 56 78" (not 3-3-3: amounts)
_SPANISH_DOTTED_GROUPS = (*_SPANISH_GROUPS, (3, 3, 3))  # "612.345.678": dots are how Spaniards print a mobile
_ALL_LENGTHS = range(16, 20)
_DINERS_LENGTHS = (14, *_ALL_LENGTHS)  # 14 (Diners Club International), 16-19 on Discover's network; never 15 (Amex's)
_CARD_ISSUERS: tuple[tuple[int, int, frozenset[int]], ...] = tuple(
    (low, high, frozenset(lengths))
    for low, high, lengths in (
        (4, 4, (16, 19)),  # Visa (13-digit Visas are no longer issued; 13-digit ids are timestamps)
        (51, 55, (16,)), (2221, 2720, (16,)),  # Mastercard
        (34, 34, (15,)), (37, 37, (15,)),  # American Express
        (6011, 6011, _ALL_LENGTHS), (644, 649, _ALL_LENGTHS), (65, 65, _ALL_LENGTHS),  # Discover
        (3528, 3589, _ALL_LENGTHS),  # JCB
        (300, 305, _DINERS_LENGTHS), (36, 36, _DINERS_LENGTHS), (38, 39, _DINERS_LENGTHS),  # Diners Club
        (62, 62, _ALL_LENGTHS), (81, 82, (16,)),  # UnionPay, RuPay
        (2200, 2204, _ALL_LENGTHS),  # Mir
        (50, 50, _ALL_LENGTHS), (56, 58, _ALL_LENGTHS), (60, 60, (16,)), (63, 63, _ALL_LENGTHS), (67, 67, _ALL_LENGTHS),  # Maestro, RuPay
        (9792, 9792, (16,)),  # Troy
    )
)  # fmt: skip
_CARD_SHAPES = ((4, 6, 5), (4, 6, 4))  # American Express and Diners Club print 15 and 14 digits so


def redact(text: str) -> str:
    """The report with e-mails, phones, IPs, IBANs, card, Social Security and national ID numbers, keys and tokens replaced by placeholders."""
    text = _valid_unicode(text)
    phones = _PhoneRecogniser(PHONE_CHECKS_PER_REPORT)
    steps: tuple[tuple[re2._Regexp, Callable[[Found], str]], ...] = (
        (_PRIVATE_KEY, lambda _match: "[secret]"),
        (_URL, _redact_url),
        (_AUTH_SCHEME, _redact_auth_scheme),
        (_ASSIGNMENT, _redact_assignment),
        (_API_KEY, lambda _match: "[api-key]"),
        (_HEX_SECRET, _redact_hex),
        (_B64_SECRET, _redact_b64),
        (_EMAIL, lambda _match: "[email]"),
    )
    for pattern, replace in steps:
        text = pattern.sub(replace, text)
    text = _SECRET_SENTENCE.sub(_redact_secret_sentence, _redact_obfuscated_emails(text))
    text = _redact_ibans(text)
    for pattern, replace in (
        (_SPANISH_ID, _redact_spanish_id),
        (_NATIONAL_INSURANCE, _redact_national_insurance),
        (_CODICE_FISCALE, _redact_codice_fiscale),
        (_STEUER_ID, _redact_steuer_id),
        (_NIR, _redact_nir),
        (_BSN, _redact_bsn),
        (_PESEL, _redact_pesel),
        (_IPV6_CANDIDATE, _redact_ipv6),
        (_IPV4_CANDIDATE, _redact_ipv4),
        (_CARD_CANDIDATE, _redact_cards),
        (_SLASHED_PHONE_CANDIDATE, phones.redact),
        (_PHONE_CANDIDATE, phones.redact),
        (_SSN, _redact_ssn),
    ):
        text = pattern.sub(replace, text)
    return text


def _valid_unicode(text: str) -> str:
    """A lone surrogate cannot be matched (RE2 reads UTF-8) nor stored: it becomes U+FFFD."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _redact_url(match: Found) -> str:
    """Keep scheme, host and path (they say what broke); drop credentials, tokens and secret parameters."""
    url = match.group(0)
    stripped = url.rstrip(".,;:!?)]}")
    trailing = url[len(stripped) :]
    try:
        parts = urlsplit(stripped)
    except ValueError:
        return "[url]" + trailing
    host = parts.netloc.rpartition("@")[2]
    credentials = "[credentials]@" if parts.username or parts.password else ""
    query = "&".join(f"{name}={_query_value(name, value)}" for name, value in _query_parameters(parts.query))
    path = _redact_path(host.lower(), parts.path)
    return f"{parts.scheme}://{credentials}{host}{path}" + (f"?{query}" if query else "") + trailing


def _query_parameters(query: str) -> list[tuple[str, str]]:
    """Each name and value of a query, %-escapes decoded but ``+`` kept a plus.

    ``parse_qsl`` reads ``+`` as a space (HTML forms' convention), so ``?phone=+491711234567``
    became ``phone= 491711234567``: no phone left to find, and the number was stored.
    """
    pairs = (parameter.partition("=") for parameter in query.split("&") if parameter)
    return [(unquote(name), unquote(value)) for name, _equals, value in pairs]


def _query_value(name: str, value: str) -> str:
    """A secret parameter's value is a ``[token]``; a phone parameter's number (``?phone=491711234567``) a ``[phone]``.

    A query value has no words before it to tell that plain digits are a phone, so the
    parameter's name does: one of :data:`_PHONE_PARAMS` as the name or a part of it (``phone_number``,
    ``tel``; not "text", which in a query is a message).
    """
    if _is_secret_param(name) or _looks_like_token(value):
        return "[token]"
    named = _PHONE_PARAMS & set(name.lower().replace("-", "_").split("_"))
    digits = sum(map(str.isdigit, value))
    if named and 7 <= digits <= 15 and digits == len(value) - sum(value.count(c) for c in " ().-+/"):
        return "[phone]"
    return value


def _is_secret_param(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_PARAM_WORDS)


def _redact_path(host: str, path: str) -> str:
    """A webhook's path is its secret; elsewhere a segment after ``reset/``, ``invite/``... or shaped like a key goes."""
    webhook = _WEBHOOK_PATHS.get(host)
    if webhook and path.startswith(webhook) and len(path) > len(webhook):
        return webhook + "[token]"
    if host == "wa.me" and path[1:].isdigit():
        return "/[phone]"  # WhatsApp's click-to-chat link is the number: https://wa.me/491711234567
    segments = path.split("/")
    for index, segment in enumerate(segments):
        after_word = index > 0 and segments[index - 1].lower() in _TOKEN_PATH_WORDS
        if _looks_like_token(segment) or (after_word and len(segment) >= 8 and (_has_digit(segment) or len(segment) >= 16)):
            segments[index] = "[token]"
    return "/".join(segments)


def _looks_like_token(value: str) -> bool:
    """Long and mixed like generated keys, a hex secret that is not a git sha, or a JWT."""
    if len(value) >= 20 and _character_kinds(value) == 3:
        return True
    if len(value) >= 32 and len(value) != 40 and all(c in "0123456789abcdefABCDEF" for c in value):
        return True
    return value.startswith("eyJ") and value.count(".") == 2


def _character_kinds(value: str) -> int:
    """How many of lower case, upper case and digits ``value`` mixes (in C loops: a candidate can be megabytes)."""
    return sum((value.upper() != value, value.lower() != value, _has_digit(value)))


def _has_digit(value: str) -> bool:
    return any(map(str.isdigit, value))


def _redact_auth_scheme(match: Found) -> str:
    """``Bearer <token>`` keeps its scheme; "basic functionality" is not a credential (it has no digit)."""
    scheme, space, credential = match.group(1), match.group(2), match.group(3)
    if len(credential) >= 8 and (_has_digit(credential) or _character_kinds(credential) >= 2 and len(credential) >= 16):
        return f"{scheme}{space}[token]"
    return match.group(0)


def _redact_assignment(match: Found) -> str:
    """``password=...``, ``"api_key": "..."``: the name stays, a value that could be a secret goes."""
    name, separator, value = match.group(1), match.group(2), match.group(3)
    quoted = value[0] in "\"'"
    if not quoted and _describes_the_secret(value):
        return match.group(0)  # "password: incorrect" is a sentence, not a secret
    return f"{name}{separator}" + (f"{value[0]}[secret]{value[0]}" if quoted else "[secret]")


def _redact_obfuscated_emails(text: str) -> str:
    """Addresses written to dodge a pattern (see :func:`_is_obfuscated_email`), the local part's spelled dots included.

    In "email me at jane dot doe at example dot com" the first candidate is "me at jane dot doe",
    the local part read as a domain: a candidate that another "at" follows is searched again from
    its domain, in a slice of :data:`_OBFUSCATED_EMAIL_LONGEST` after it (a search of the whole
    text per candidate would be quadratic), which finds the whole address.
    """
    pieces: list[str] = []
    position = 0  # the text before it is done
    for candidate in _OBFUSCATED_EMAIL.finditer(text):
        if candidate.start() < position:
            continue  # inside an address already taken
        match, offset = candidate, 0
        if _at_follows(text, candidate.end()):
            again = _OBFUSCATED_EMAIL.search(text[candidate.start(2) : candidate.end() + _OBFUSCATED_EMAIL_LONGEST])
            if again is not None:
                match, offset = again, candidate.start(2)
        if _is_obfuscated_email(match.group(1), match.group(2), text, offset + match.start()):
            pieces += [text[position : offset + match.start()], "[email]"]
            position = offset + match.end()
    pieces.append(text[position:])
    return "".join(pieces)


_OBFUSCATED_EMAIL_LONGEST = 320  # an address has at most 254 characters; spelled, some more


def _at_follows(text: str, end: int) -> bool:
    """Whether "at", as a word or in brackets, comes right after ``end``."""
    after = text[end : end + 8]
    word = after.lstrip(" \t").lower()
    return word[:4] in ("(at)", "[at]", "{at}", "<at>") or (after[:1] in " \t" and word[:3] in ("at ", "at\t"))


def _is_obfuscated_email(at: str, domain: str, text: str, start: int) -> bool:
    """Whether a candidate at ``start`` is an address: ``jane(at)example.com``, ``jane [at] example [dot] com``...

    "at" in brackets is never prose, so it is an address anywhere. Spelled as a word, "at" joins
    words in every other sentence ("look at example dot com", "NullPointerException at
    com.example.Foo"), so it is one only with the dot spelled too and an e-mail word among the
    three before it: "email me at jane at example dot com", "correo: jane at example dot com".
    """
    if at.strip()[:1] in "([{<":
        return True
    spelled_dot = "dot" in domain.lower().translate(_BRACKETS_TO_SPACE).split()
    return spelled_dot and bool(_EMAIL_WORDS & _words_before(text, start))


_BRACKETS_TO_SPACE = str.maketrans("()[]{}<>", "        ")
_EMAIL_WORDS = frozenset({
    "email", "e-mail", "mail", "emails", "e-mails", "mails", "emailed", "mailed", "address", "contact", "reach",
    "mailto", "e-mailadresse", "emailadresse", "mailadresse", "correo", "courriel", "adresse",
})  # fmt: skip


def _redact_secret_sentence(match: Found) -> str:
    """"my password is hunter2", "my password is hunter", "passcode: 1234": the word after goes if it can be one.

    A quoted value, or one of 4+ characters that is not a word describing the secret (see
    :func:`_describes_the_secret`): "password is incorrect", "the pin is about" and "password is
    8-16 characters" are sentences. Runs after the keys, hex, e-mails, so a value already a
    placeholder is not matched again (and keeps its kind).
    """
    name, separator, value = match.group(1), match.group(2), match.group(3)
    if value[0] in "\"'":
        return f"{name}{separator}{value[0]}[secret]{value[0]}"
    word = value.rstrip(".,;:!?)")
    unit = match.string[match.end() : match.end() + 12].split()[:1]
    if len(word) < 4 or _describes_the_secret(word) or (unit and unit[0].lower().strip(".,") in _LENGTH_UNITS):
        return match.group(0)
    return f"{name}{separator}[secret]{value[len(word) :]}"


_LENGTH_UNITS = frozenset({"characters", "chars", "digits", "letters", "numbers", "symbols", "long"})


def _describes_the_secret(word: str) -> bool:
    """Whether a word of letters after "password is" / "password:" says something of the password, not what it is.

    Users tell how their password is ("wrong", "too short", "expired", "being rejected", "definitely
    right"), and some tell what it is ("hunter", "letmein"); no list of passwords can tell them apart,
    so the describing words are what is recognised: a closed list of the adjectives, adverbs and
    small words reports use there, and the endings of participles, adverbs and adjectives (-ed,
    -ing, -ly, -able, -ible, -ful, -less, -ous, -ive). Anything else of 4+ letters is redacted: a
    password that happens to be such a word ("blessed") is missed, an unusual description
    ("password is purple") is lost, which a report survives.

    A hyphenated word ("case-sensitive", "re-entered") describes when each part does and one
    has 4+ letters: "blue-sky" and "my-dog" are redacted.
    """
    parts = word.lower().split("-")
    if not all(part.isalpha() for part in parts):
        return False
    if len(parts) > 1 and max(map(len, parts)) < 4:
        return False
    return all(len(part) < 4 or part in _DESCRIBING_WORDS or part.endswith(_DESCRIBING_ENDINGS) for part in parts)


_DESCRIBING_ENDINGS = ("ed", "ing", "ly", "able", "ible", "ful", "less", "ous", "ive")
_DESCRIBING_WORDS = frozenset({
    # how it is
    "wrong", "incorrect", "correct", "right", "invalid", "valid", "accurate", "inaccurate", "reset", "fine",
    "okay", "good", "weak", "strong", "long", "short", "longer", "shorter", "stronger", "weaker", "simple",
    "easy", "hard", "safe", "unsafe", "secure", "insecure", "same", "different", "similar", "identical",
    "unknown", "known", "shown", "hidden", "sent", "gone", "lost", "forgot", "forgotten", "blank", "empty",
    "null", "none", "broken", "current", "temporary", "default", "random", "unique", "true", "false", "fake",
    "real", "mine", "yours", "ours", "theirs", "case", "lowercase", "uppercase", "numeric", "alphanumeric",
    "mandatory", "optional", "done",
    # small words that go on with the sentence
    "still", "also", "already", "always", "never", "just", "very", "even", "much", "about", "almost",
    "somehow", "that", "this", "these", "those", "there", "here", "then", "than", "what", "which", "when",
    "where", "while", "your", "their", "some", "each", "every", "both", "either", "neither", "been", "have",
    "with", "without", "from", "into", "over", "under", "after", "before", "since", "until", "like", "once",
    "twice", "more", "most", "least", "enough", "three", "four", "seven", "eight", "nine", "twelve", "sixteen",
})  # fmt: skip


def _redact_hex(match: Found) -> str:
    """A long hex string is a secret unless it is a git sha (40) or named as a digest or trace id just before."""
    value = match.group(0)
    before = match.string[max(0, match.start() - 24) : match.start()].lower()
    if len(value) == 40 or any(word in before for word in _DIGEST_CONTEXT):
        return value
    return "[secret]"


def _redact_b64(match: Found) -> str:
    """A long run of letters and digits is a secret only when it mixes cases and digits.

    A run right after a dot or colon continues a host or path (``hooks.slack.com/...``):
    only its mixed segments go, so the readable part stays.
    """
    token = match.group(0)
    before = match.string[match.start() - 1 : match.start()] if match.start() else ""
    if "/" in token and before in (".", ":"):
        return "/".join("[secret]" if _looks_like_token(segment) else segment for segment in token.split("/"))
    return "[secret]" if _character_kinds(token) == 3 else token


def _redact_ibans(text: str) -> str:
    """IBANs in any case, grouped by spaces or dashes as people type them.

    The pattern also takes the words after one ("... 00 or gb82 west"), so the
    rest of a candidate after an IBAN is searched again, in a slice no longer
    than two candidates (a search of the whole text per candidate would be
    quadratic): the next IBAN is matched whole."""
    pieces: list[str] = []
    position = 0  # the text before it is done
    for candidate in _IBAN.finditer(text):
        if candidate.end() <= position:
            continue  # inside an IBAN already taken
        start = max(candidate.start(), position)
        window = text[start : candidate.end() + _IBAN_LONGEST]
        offset = 0
        while offset < candidate.end() - start and (match := _IBAN.search(window, offset)) is not None:
            if match.start() >= candidate.end() - start:
                break  # the next candidate's, which the outer scan finds
            length = _iban_length(match.group(0))
            if length:
                pieces += [text[position : start + match.start()], "[iban]"]
                position = start + match.start() + length
            offset = match.start() + length if length else match.end()
    pieces.append(text[position:])
    return "".join(pieces)


_IBAN_LONGEST = 64  # two letters, two digits and 30 characters, each after a separator


def _iban_length(candidate: str) -> int:
    """How much of ``candidate`` is an IBAN that passes mod-97, its trailing words dropped one by one (0: none)."""
    ends = [index for index, character in enumerate(candidate) if character in " -"] + [len(candidate)]
    for end in reversed(ends):
        compact = candidate[:end].replace(" ", "").replace("-", "")
        if len(compact) < 15:
            break
        if len(compact) <= 34 and _iban_checksum_valid(compact):
            return end
    return 0


def _iban_checksum_valid(iban: str) -> bool:
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _redact_ipv6(match: Found) -> str:
    """A run of hex digits, dots and colons that :mod:`ipaddress` reads as an IPv6 address (a sentence's dot aside)."""
    run = match.group(0)
    value = run.rstrip(".")
    before = match.string[match.start() - 1 : match.start()]
    if len(value) > 45 or before.isalnum() or before == "_":
        return run  # longer than any address, or the tail of a word
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return run
    return "[ip]" + run[len(value) :]


def _redact_ipv4(match: Found) -> str:
    """Four numbers up to 255 are an address, unless they are a version: after a product, or so named.

    The pattern takes the whole dotted run, so ``10.0.19041.1`` and ``1.2.3.4.5`` are one (kept) candidate.
    """
    run, text, start = match.group(0), match.string, match.start()
    parts = run.split(".")
    if len(parts) != 4 or any(len(part) > 3 or int(part) > 255 for part in parts):
        return run
    before = text[max(0, start - 2) : start]
    if before.endswith(".") or _VERSION_WORDS & _words_before(text, start):
        return run
    if before.endswith("/") and before[:1].isalpha():
        return match.group(0)  # Chrome/122.0.0.0
    return "[ip]"


_PUNCTUATION = ".,:;#()[]\"'"
_LABEL_PUNCTUATION = _PUNCTUATION + "="
"""A national ID's label may end in ``=`` as in ``:`` (``steuer-id=86095742719``, ``NINO=AB123456C``).

Only their labels read so: after "app=" or "version=" an address is still an address.
"""


def _words_before(text: str, start: int, count: int = 3, punctuation: str = _PUNCTUATION) -> set[str]:
    """The last few words before ``start``, lower-case and without punctuation: the context a human reads."""
    words = text[max(0, start - 40) : start].lower().split()[-count:]
    return {word.strip(punctuation) for word in words}


def _redact_ssn(match: Found) -> str:
    """A US Social Security number, ``123-45-6789`` or ``123 45 6789``, that the phones left.

    It runs after the phones, so a number libphonenumber reads as a phone (``078-05-1120`` is a
    German one) stays ``[phone]``. Two separators alike, area neither 000, 666 nor 900 and up,
    group and serial not zero; a spaced one next to another number is a longer run (a sum, a table row).
    """
    area, first, group, second, serial = (match.group(index) for index in range(1, 6))
    text, start, end = match.string, match.start(), match.end()
    before, after = text[max(0, start - 2) : start], text[end : end + 2]
    if first != second or before[-1:] in _NUMBER_JOINERS or (after[:1] in _NUMBER_JOINERS and after[1:2].isdigit()):
        return match.group(0)  # "2024-123-45-6789", "123-45-6789.5": part of a longer number or path
    if first == " " and (before[:1].isdigit() or after[1:2].isdigit()):
        return match.group(0)
    if area in ("000", "666") or area >= "900" or group == "00" or serial == "0000":
        return match.group(0)
    return "[ssn]"


_NUMBER_JOINERS = ("_", ".", "/", ":", "-", "+", "#")
_CODE_JOINERS = ("_", ".", "/", "-", "+", "#")  # a colon may end a label: "DNI:12345678Z"
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_NIE_PREFIXES = {"X": "0", "Y": "1", "Z": "2"}
_NINO_PREFIXES_NOT_ISSUED = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})
_NINO_WORDS = frozenset({"ni", "nino", "nin", "insurance"})
_NIR_WORDS = frozenset({"nir", "nirpp", "insee", "sécu", "secu", "sociale", "sécurité", "securite"})
_STEUER_ID_WORDS = frozenset({
    "steuer-id", "steuerid", "idnr", "id-nr", "steuer-idnr", "steueridentifikationsnummer",
    "steuer-identifikationsnummer", "identifikationsnummer",
})  # fmt: skip
_BSN_WORDS = frozenset({"bsn", "bsn-nummer", "burgerservicenummer", "sofinummer", "sofi-nummer"})
_PESEL_WORDS = frozenset({"pesel"})
_PESEL_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
_PESEL_CENTURIES = {0: 1900, 1: 2000, 2: 2100, 3: 2200, 4: 1800}  # the month plus 20 per century: 81-92 is the 1800s
_CODICE_FISCALE_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", (
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16,
    10, 22, 25, 24, 23,
), strict=True))  # fmt: skip
_CODICE_FISCALE_EVEN = {**{str(digit): digit for digit in range(10)}, **{chr(65 + n): n for n in range(26)}}


def _part_of_longer_code(match: Found) -> bool:
    """A candidate joined to what is before or after it: a path, a SKU, an order number ("#12345678Z", "SKU-AB123456C-2")."""
    text, start, end = match.string, match.start(), match.end()
    after = text[end : end + 2]
    return text[start - 1 : start] in _CODE_JOINERS or (after[:1] in _CODE_JOINERS and after[1:2].isalnum())


def _redact_spanish_id(match: Found) -> str:
    """A Spanish DNI (``12345678Z``, ``12.345.678-Z``) or NIE (``X1234567L``): the letter is the number mod 23's.

    In either case (``12345678z``, ``x1234567l``: people type them so), and one in 23 eight-digit
    numbers with a letter passes by chance: a SKU or order code of that shape with the wrong letter stays.
    """
    number, letter = match.group(1).replace(".", "").replace("-", "").upper(), match.group(2).upper()
    number = _NIE_PREFIXES.get(number[0], number[0]) + number[1:]
    if _part_of_longer_code(match) or _DNI_LETTERS[int(number) % 23] != letter:
        return match.group(0)
    return "[national-id]"


def _redact_national_insurance(match: Found) -> str:
    """A UK National Insurance number: two letters HMRC issues, six digits, A to D (``AB 12 34 56 C``).

    There is no check digit, so the structure decides: spaced as HMRC prints it, it is redacted
    anywhere; typed unbroken (``AB123456C``, a SKU's shape too) only after "NI", "NINO" or
    "insurance" in the three words before it.
    """
    number = match.group(0)
    if len(number) not in (9, 13) or number[:2] in _NINO_PREFIXES_NOT_ISSUED or _part_of_longer_code(match):
        return number  # 9 characters unbroken, 13 with every space; others mix them
    if len(number) == 9 and not _NINO_WORDS & _words_before(match.string, match.start(), 3, _LABEL_PUNCTUATION):
        return number
    return "[national-id]"


def _redact_codice_fiscale(match: Found) -> str:
    """An Italian codice fiscale (``RSSMRA85T10A562S``), in any case, whose last letter checks the other fifteen."""
    code = match.group(0).upper()
    odd = sum(_CODICE_FISCALE_ODD[character] for character in code[0:15:2])
    even = sum(_CODICE_FISCALE_EVEN[character] for character in code[1:15:2])
    if _part_of_longer_code(match) or chr(65 + (odd + even) % 26) != code[15]:
        return match.group(0)
    return "[national-id]"


def _redact_steuer_id(match: Found) -> str:
    """A German Steuer-ID after "Steuer-ID", "IdNr"... (``86095742719``, ``86 095 742 719``).

    Eleven digits are ids and amounts too, so the word must be one of the two before it
    ("Steuer-ID ist ..."; in "Steuer-ID 1, order 86095742719" the number is an order's); then
    the ISO 7064 MOD 11,10 check digit and the rule that one digit of the first ten appears twice
    or three times (three never in a row) and each other at most once.
    """
    number = match.group(0)
    if len(number) not in (11, 14) or _part_of_longer_code(match):
        return number  # 11 digits unbroken, 14 with every space; others mix them
    digits = number.replace(" ", "")
    if not _labelled(match, _STEUER_ID_WORDS) or not _valid_steuer_id(digits):
        return number
    return "[national-id]"


def _labelled(match: Found, words: frozenset[str]) -> bool:
    """One of ``words`` is one of the two words before the candidate, also as a label with ``:`` or ``=``."""
    return bool(words & _words_before(match.string, match.start(), 2, _LABEL_PUNCTUATION))


def _valid_steuer_id(digits: str) -> bool:
    """The digit-repetition rule the Bundeszentralamt für Steuern issues by, and the check digit."""
    counts = sorted((digits[:10].count(digit) for digit in set(digits[:10])), reverse=True)
    if counts[0] not in (2, 3) or counts[1:2] != [1] or any(digit * 3 in digits[:10] for digit in "0123456789"):
        return False
    product = 10
    for digit in digits[:10]:
        total = (int(digit) + product) % 10 or 10
        product = total * 2 % 11
    return (11 - product) % 10 == int(digits[10])


def _redact_nir(match: Found) -> str:
    """A French NIR (numéro de sécurité sociale), ``2 55 08 14 168 025 38``: the key is 97 - n mod 97.

    Sex 1 or 2, a birth month 01 to 12 (or 20, unknown), and Corsica's departments 2A and 2B
    read as 19 and 18 for the key; the separators all alike. Spaced as the carte Vitale prints
    it, it is redacted anywhere; typed unbroken only after "NIR", "INSEE", "sécu", "sociale"...
    in the three words before it: 10 of 2,000 random 15-digit order numbers pass the key.
    """
    written = match.group(0)
    digits = written.replace(" ", "")
    if len(written) not in (15, 21) or _part_of_longer_code(match):
        return written  # 15 characters unbroken, 21 with every space; others mix them
    if 97 - int(digits[:13].replace("2A", "19").replace("2B", "18")) % 97 != int(digits[13:]):
        return written
    if len(written) == 15 and not _NIR_WORDS & _words_before(match.string, match.start(), 3, _LABEL_PUNCTUATION):
        return written
    return "[national-id]"


def _redact_bsn(match: Found) -> str:
    """A Dutch BSN after "BSN", "burgerservicenummer" or "sofinummer" (``123456782``, ``1234.56.782``).

    Nine digits pass its check one time in 11, and nine digits are amounts and ids too, so the
    label must be one of the two words before it, as for the Steuer-ID.
    """
    number = match.group(0)
    if len(number) not in (9, 11) or _part_of_longer_code(match) or not _labelled(match, _BSN_WORDS):
        return number  # 9 digits unbroken, 11 with both dots; others mix them
    return "[national-id]" if _valid_bsn(number.replace(".", "")) else number


def _valid_bsn(digits: str) -> bool:
    """The "11-proef": the first eight digits weighted 9 down to 2, less the last, are a multiple of 11 (and not 0)."""
    weighted = sum(int(digit) * weight for digit, weight in zip(digits, range(9, 1, -1), strict=False))
    return int(digits) != 0 and (weighted - int(digits[8])) % 11 == 0


def _redact_pesel(match: Found) -> str:
    """A Polish PESEL after "PESEL" (``44051401458``): a check digit and a date of birth that exists.

    The first six digits are the date (the month plus 20 for each century after the 1900s, 80
    for the 1800s), the last a weighted check digit; about 1 random number in 50 passes both,
    so the label must be one of the two words before it, as for the Steuer-ID.
    """
    number = match.group(0)
    if _part_of_longer_code(match) or not _labelled(match, _PESEL_WORDS) or not _valid_pesel(number):
        return number
    return "[national-id]"


def _valid_pesel(digits: str) -> bool:
    """The check digit, 10 less the weighted sum's last digit, and a real date of birth."""
    if (10 - sum(int(d) * w for d, w in zip(digits, _PESEL_WEIGHTS, strict=False)) % 10) % 10 != int(digits[10]):
        return False
    century, month = divmod(int(digits[2:4]), 20)
    if century not in _PESEL_CENTURIES:
        return False
    try:
        date(_PESEL_CENTURIES[century] + int(digits[:2]), month, int(digits[4:6]))
    except ValueError:
        return False
    return True


def _redact_cards(match: Found) -> str:
    """Card numbers among a run of digit groups: unbroken, or printed 4-4-4-4(-3) or 4-6-5 with one separator."""
    run = match.group(0)
    groups = run.translate(_SEPARATORS_TO_SPACE).split(" ")
    starts = [index for index, group in enumerate(groups) if len(group) == 4 or 13 <= len(group) <= 19]
    if not starts:
        return run  # a long run of short numbers ("1.1.1.1..."): no group can start a card
    separators = run.translate(_DIGITS_REMOVED)
    cards: dict[int, int] = {}
    covered = -1
    for first in starts:
        if first > covered and (last := _card_ending_at(groups, separators, first)) is not None:
            cards[first] = covered = last
    if not cards:
        return run
    pieces: list[str] = []
    index = 0
    while index < len(groups):
        last = cards.get(index, index - 1)
        pieces.append("[card]" if last >= index else groups[index])
        index = max(last, index) + 1
        if index <= len(separators):
            pieces.append(separators[index - 1])
    return "".join(pieces)


_SEPARATORS_TO_SPACE = str.maketrans(".-/", "   ")
_DIGITS_REMOVED = str.maketrans("", "", "0123456789")


def _card_ending_at(groups: list[str], separators: str, first: int) -> int | None:
    """The last group of a card number starting at ``groups[first]``, the longest that checks out."""
    head = groups[first]
    if 13 <= len(head) <= 19:
        return first if _is_card_number(head) else None
    for length in sorted(_issued_lengths(head) if len(head) == 4 else (), reverse=True):
        for shape in _printed_shapes(length):
            last = first + len(shape) - 1
            if (
                last < len(groups)
                and all(len(groups[first + offset]) == size for offset, size in enumerate(shape))
                and len(set(separators[first:last])) == 1
                and _luhn_valid("".join(groups[first : last + 1]))
            ):
                return last
    return None


@lru_cache(maxsize=8)
def _printed_shapes(length: int) -> tuple[tuple[int, ...], ...]:
    """How a card number of ``length`` digits is printed in groups: fours, or American Express's 4-6-5."""
    fours = (4,) * (length // 4) + ((length % 4,) if length % 4 else ())
    return (fours, *(shape for shape in _CARD_SHAPES if sum(shape) == length))


def _is_card_number(digits: str) -> bool:
    """An issuer's prefix with that issuer's length, and a valid Luhn check digit."""
    return len(digits) in _issued_lengths(digits[:4]) and _luhn_valid(digits)


@lru_cache(maxsize=10_000)
def _issued_lengths(prefix: str) -> frozenset[int]:
    """The lengths issuers give numbers starting with these four digits (none: not a card prefix)."""
    lengths: set[int] = set()
    for low, high, issued in _CARD_ISSUERS:
        if low <= int(prefix[: len(str(low))]) <= high:
            lengths |= issued
    return frozenset(lengths)


def _luhn_valid(digits: str) -> bool:
    doubled = sum(_LUHN_DOUBLED[int(digit)] for digit in digits[-2::-2])
    return (sum(map(int, digits[-1::-2])) + doubled) % 10 == 0


_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


class _PhoneRecogniser:
    """Phone-shaped numbers that libphonenumber says are valid, within a budget of checks per report."""

    def __init__(self, checks: int) -> None:
        self._checks_left = checks

    def redact(self, match: Found) -> str:
        candidate = match.group(0)
        text, start, end = match.string, match.start(), match.end()
        before, after = text[start - 1 : start], text[end : end + 4]
        if after[:1].isalnum() or _is_decimal_tail(candidate, after):
            return candidate  # part of a word or a decimal
        context = _words_before(text, start)
        head = _date_or_time_head(candidate, text[max(0, start - 5) : start])
        if head:
            return head + self._phone_or_same(candidate[len(head) :], context)
        if _joined(before) and not _after_phone_label(text, start):
            return candidate
        return self._phone_or_same(candidate, context)

    def _phone_or_same(self, candidate: str, context: set[str]) -> str:
        """``[phone]`` for the number ``candidate`` holds (a trailing group aside), or ``candidate`` as it was."""
        if not _phone_shaped(candidate, context):
            return candidate
        named = bool(_PHONE_WORDS & context)
        attempts = [candidate]
        if " " in candidate.strip():
            attempts.append(candidate.rsplit(" ", 1)[0])  # "+1 415 555 0199 2 times": the last group is not the phone's
        for attempt in attempts:
            if self._valid(attempt.rstrip(" ().-"), named):
                return "[phone]" + candidate[len(attempt) :]
        return candidate

    def _valid(self, candidate: str, named: bool) -> bool:
        if self._checks_left <= 0:
            return True  # a report with hundreds of phone-shaped numbers: redact rather than spend seconds
        self._checks_left -= 1
        return _is_phone_number(candidate, named)


def _date_or_time_head(candidate: str, before: str) -> str:
    """A date or the end of a time that the candidate starts with, and the spaces after it ("" if none).

    A date and a number are one run of digits and separators ("seit 01/01/2024 030 1234567",
    "2024-01-01 415 555 0199", a German date without its year: "seit dem 01.01. 0171 1234567",
    which read "[phone] 1234567"), and so is a time's minutes with it ("10:30 0171 1234567": the
    candidate starts after the colon), or its seconds with their fraction ("12:30:45.123
    0301234567", or the fraction alone after a comma, "12:30:45,123 0301234567", as log lines
    print it); the number after the head is a candidate of its own. ``before`` is the text's
    last few characters before the candidate.
    """
    head = _DATE_OR_TIME_HEAD.search(candidate)
    if head is None:
        return ""
    if head.group(1) is not None:
        return head.group(0) if _ends_a_time(head.group(1), before) else ""
    return "" if _joined(before[-1:]) else head.group(0)


def _ends_a_time(digits: str, before: str) -> bool:
    """Minutes or seconds right after "10:" (``45``, ``45.123``), or a fraction of a second right after "10:30:45,"."""
    if before[-1:] == ":" and before[-2:-1].isdigit():
        return len(digits.partition(".")[0]) == 2
    seconds = before[-5:-1]  # "0:45" before the comma of "12:30:45,123"
    after_seconds = before[-1:] == "," and len(seconds) == 4 and seconds[1] == ":"
    return after_seconds and digits.isdigit() and seconds.replace(":", "").isdigit()


def _after_phone_label(text: str, start: int) -> bool:
    """A phone word and a colon right before ``start``: ``tel:+491711234567``, ``href="tel:...``, ``phone:0171 1234567``.

    Elsewhere a colon joins the candidate to what is before it (a time, a port, a path).
    """
    if text[start - 1 : start] != ":":
        return False
    label = ""
    for character in reversed(text[max(0, start - 16) : start - 1]):
        if not character.isalpha():
            break
        label = character + label
    return label.lower() in _PHONE_WORDS


def _joined(before: str) -> bool:
    """Whether the character before a candidate makes it part of a word, a version or a path."""
    return bool(before) and (before.isalnum() or before in "_./:-")


def _is_decimal_tail(candidate: str, after: str) -> bool:
    """A decimal point after the number ("1234567.5"), or the cents after an amount with thousands dots ("612.345.678,90").

    A comma is a decimal only after dotted digits and before one or two digits: "0171 1234567,0171
    7654321" and "612.345.678,612.345.679" are lists of phones.
    """
    if after[:1] == ".":
        return after[1:2].isdigit()
    dotted = "." in candidate and set(candidate) <= set("0123456789.")
    return dotted and after[:1] == "," and after[1:2].isdigit() and not after[2:4].isdigit()


def _phone_shaped(candidate: str, context: set[str]) -> bool:
    """7 to 15 digits, not a date, grouped like a phone number (plain digit strings need a word such as "call").

    ``context`` is the few words before the candidate. Plain digits without such a word are a
    phone only as a national number written unbroken, see :func:`_unbroken_national`.

    A first slash may only follow the area code, as German numbers are written (``030/901820``,
    ``+49 30/901820``), see :func:`_area_code_before_slash`; more may part the rest (``030/1234/5678``,
    which read ``[phone]/5678`` while a candidate held one slash only).
    """
    digits = len(candidate) - sum(candidate.count(c) for c in " ().-+/")
    if not 7 <= digits <= 15 or _ISO_DATE.search(candidate):
        return False
    if "/" in candidate and not _area_code_before_slash(candidate):
        return False
    if _international(candidate) or _PHONE_WORDS & context:
        return True
    if not any(c in " ().-/" for c in candidate):
        return _unbroken_national(candidate) and not _ID_WORDS & context  # else an id, a timestamp, an amount
    if set(candidate) <= set("0123456789."):
        groups = candidate.split(".")
        if tuple(map(len, groups)) in _SPANISH_DOTTED_GROUPS:
            return True  # libphonenumber decides (as a Spanish number only, see _spanish)
        if any(len(group) < 2 for group in groups[1:]):
            return False  # 612.345.678.9, Chrome 124.0.6367.118: a version or a decimal; no one prints a phone so
        return digits >= 10 and not all(len(group) == 3 for group in groups[1:])  # 1.234.567.890 is an amount
    return True


def _unbroken_national(candidate: str) -> bool:
    """10 or 11 digits after one trunk 0, how Germans, the French, Britons... type their own number: ``01711234567``.

    Ids, timestamps and amounts do not start with a single 0 (zero-padded ids with ``00``, which
    :func:`_is_phone_number` reads as an international prefix). Nearly every such number is valid
    somewhere in :data:`_TRUNK_REGIONS`, so the shape decides; the price: an ISBN-10 or account
    number starting with 0 reads as a phone, unless named just before ("ISBN", "order"...).
    """
    return 10 <= len(candidate) <= 11 and candidate[0] == "0" and candidate[1] != "0"


def _area_code_before_slash(candidate: str) -> bool:
    """Before the one slash, an area code of 2 to 5 digits after the trunk 0, or of 1 to 5 after ``+`` and a country code.

    The area code is the digits right before the slash, whatever joins them to the country code or
    trunk (``+49 (0)30/901820``, ``+49-30/901820``, ``(030)1234/5678``, Vienna's ``+43 1/5321234``).
    Fractions, ratios and month/year (``0 / 1234567``, ``1920/1080``, ``12/2024``, ``0.25/1234567``:
    no dot before the slash) stay; a date (``12/03/2024``) is refused before, by its shape.
    """
    head = candidate.partition("/")[0].rstrip(" )")
    area = head[len(head.rstrip("0123456789")) :]
    if "." in head:
        return False
    if _international(candidate):
        return 1 <= len(area) <= 5
    return 2 <= len(area) <= 5 and head.lstrip("(").startswith("0")


def _international(candidate: str) -> bool:
    """Written with ``+`` and a country code, also in brackets: ``+34 ...``, ``(+34) ...``."""
    return candidate.startswith(("+", "(+"))


def _spanish(national: str, named: bool) -> tuple[str, ...]:
    """Spain, for a number grouped as Spaniards print one (3-2-2-2 or 2-3-2-2, or 3.3.3 with dots), which amounts and ids never are.

    Spaced 3-3-3 is left out ("612 345 678 COP"); dotted, 3.3.3 is also an amount of hundreds of
    millions, so it is read only as a mobile (6 or 7 first, how people give their own number)
    with no round group ("650.000.000" is an amount); libphonenumber then checks it. After a
    word that names a phone (``named``: "móvil 612345678", "teléfono: 612 345 678") the nine
    digits are a number whichever way they are grouped.
    """
    parts = national.translate(_SEPARATORS_TO_SPACE).split(" ")
    groups = tuple(map(len, parts))
    if named and sum(groups) == 9:
        return ("ES",)
    if groups == (3, 3, 3):
        dotted_mobile = set(national) <= set("0123456789.") and national[:1] in "67" and "000" not in parts
        return ("ES",) if dotted_mobile else ()
    return ("ES",) if groups in _SPANISH_GROUPS else ()


@lru_cache(maxsize=4096)
def _is_phone_number(candidate: str, named: bool = False) -> bool:
    """Whether libphonenumber reads ``candidate`` as valid where it can come from; ``named``: after a word such as "phone"."""
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    national = candidate.lstrip("(")
    regions: tuple[str | None, ...]
    if _international(candidate):
        regions = (None,)
    else:
        regions = _TRUNK_REGIONS if national.startswith("0") else _PLAIN_REGIONS + _spanish(national, named)
    for region in regions:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number) or (region is None and phonenumbers.is_possible_number(number)):
            return True  # written with its country code, a number of the right length is a phone even if unassigned
    return False
