"""The deterministic router: which tool a responder's question asks for, and with which arguments.

It runs where no LLM is configured (the embedded default), so it has to read
questions as people type them in an incident: Slack formatting (``<@U123>``,
``*bold*``, links), typos, and time phrases. The order of reading matters:

1. clean the text (mentions, formatting, ``service:``/``at:`` filters are the
   caller's), then take the time window out ("this week", "since yesterday",
   "last 6 hours"), so a window is never mistaken for a topic or a service;
2. find the catalog service or path and the report category the words name
   (nearest category for complaint topics, closest spelling for services);
3. pick the intent from cue words, most specific first: a suggestion number
   ("why #2?"), owners or on-call, dependencies, recent changes, complaint
   trend, complaints, wiki, then a symptom (an RCA);
4. anything left unplaced gets the menu of what can be answered, not an RCA
   of a question that was not about an incident.

In a thread, :func:`follow_up` reads a question with the thread's earlier
route in view: one that names only a service, a window or a report category
("and in payments?", "what about the last 2 hours?") asks the earlier question
again with that subject changed, one that names no service takes the
earlier one's ("show me the changes in the last 2 hours"), and after an RCA
"what about the config change?" asks for the suggestion those words name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tools.reports.topics import nearest_category
from tools.windows import CAPPED_WINDOW, MAX_WINDOW_HOURS

MENU = "menu"

# Slack escapes "<" in what people type, so a mention or link never holds one; excluding it keeps
# each attempt from reading to the end of the text (quadratic: "<@" repeated over 1 MB ran for minutes).
_MENTION = re.compile(r"<[@#!][^<>]*>|(?:^|(?<=\s))@[\w.\-]+")
_LINK = re.compile(r"<(?:https?|mailto):[^|<>]*\|([^<>]*)>|<(?:https?|mailto):[^<>]*>")
_FORMAT = re.compile(r"(?<![\w/])[*_~`]+|[*_~`]+(?![\w/])")
_FILTER = re.compile(r"(?:^|\s)(?:service|at):\S+", re.IGNORECASE)
_NUMBER_WORDS = {"one": 1, "a": 1, "an": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "twelve": 12,
                 "twenty four": 24, "twenty-four": 24, "48": 48, "couple of": 2, "few": 3}
_UNIT_HOURS = {"m": 1 / 60, "min": 1 / 60, "h": 1, "d": 24, "w": 24 * 7}

_WINDOW_PATTERNS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"\b(?:in\s+)?(?:the\s+)?(?:last|past|previous|over\s+the\s+last|within(?:\s+the)?(?:\s+last)?)\s+"
                r"(?P<count>\d+(?:\.\d+)?|one|two|three|four|five|six|twelve|twenty[ -]four|couple of|few|an?)\s*"
                r"(?P<unit>m(?:in(?:ute)?s?)?|h(?:(?:ou)?rs?|ours?|ous|r)?|d(?:ays?|ys)?|w(?:(?:ee)?ks?)?)\b", re.I), None),
    (re.compile(r"\b(?P<count>\d+)\s*(?P<unit>h|hrs?|hours?|d|days?)\b", re.I), None),
    (re.compile(r"\b(?:in\s+)?(?:the\s+)?(?:last|past)\s+(?P<unit>hour|day|week|month)\b", re.I), "single"),
    (re.compile(r"\b(?:this|the\s+past|over\s+the)\s+week(?:end)?\b|\bweekly\b", re.I), 7 * 24),
    (re.compile(r"\blast\s+week\b", re.I), 7 * 24),
    (re.compile(r"\b(?:this|last|past)\s+month\b|\b30\s*days\b", re.I), 30 * 24),
    (re.compile(r"\bsince\s+(?:yesterday|yday|yesterdy)\b|\byesterday\b", re.I), 48),
    (re.compile(r"\b(?:today|so\s+far\s+today|this\s+morning|tonight|last\s+night|overnight)\b", re.I), 24),
    (re.compile(r"\b(?:just\s+now|recently|lately|latest|recent)\b", re.I), None),
]
_SINGLE_UNIT = {"hour": 1, "day": 24, "week": 7 * 24, "month": 30 * 24}

_SUGGESTION = re.compile(
    r"(?:#\s*(?P<hash>\d)\b|\b(?:number|no\.?|suggestion|option|item|rank|culprit|change|candidate)\s*#?\s*(?P<num>\d)\b"
    r"|\b(?P<ordinal>first|second|third|fourth|fifth|1st|2nd|3rd|4th|5th|top)\s+(?:one|suggestion|change|culprit|candidate|pick|result|commit)\b)",
    re.I,
)
_ORDINALS = {"first": 1, "1st": 1, "top": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "fifth": 5, "5th": 5}
_OWNERS = re.compile(
    r"\b(?:who(?:'s|\s+is|\s+are)?\s+(?:owns?|owner|responsible|in\s+charge|maintains?|on[\s-]?call|oncall|on\s+point)"
    r"|owners?\b|owned\s+by|ownership|on[\s-]?call|oncall|on-cal\b|maintainers?|code\s*owners?|codeowners"
    r"|which\s+team|what\s+team|whose\s+(?:is|code|service)|who\s+(?:do|should|can)\s+(?:i|we)\s+(?:page|ping|call|contact|escalate|talk)"
    r"|who\s+to\s+(?:page|ping|contact|escalate)|team\s+behind|who\s+wrote)",
    re.I,
)
_DEPENDENCIES = re.compile(
    r"\b(?:depend\w*|dependan\w*|dependen\w*|deps\b|downstream|upstream|blast\s+radius|call(?:s|ed)?\s+by|"
    r"what\s+(?:does\s+\S+\s+)?(?:call|calls|use|uses|talk\s+to)|who\s+(?:calls|uses)|relies\s+on|rely\s+on|"
    r"consumers?\s+of|affected\s+if|impacted\s+if|what\s+(?:breaks|else\s+breaks)\s+if)",
    re.I,
)
_CHANGES = re.compile(
    r"\b(?:chang\w*|chnage\w*|cahnge\w*|deploy\w*|depoly\w*|commits?|shipped|ship|landed|merged?|merges|"
    r"rolled\s+out|rollouts?|releases?|released|pushed|went\s+out|went\s+in|diffs?|prs?|pull\s+requests?|"
    r"what'?s\s+new|whats\s+new|anything\s+new|new\s+in)\b",
    re.I,
)
_COMPLAINTS = re.compile(
    r"\b(?:complain\w*|complian\w*|compalin\w*|bug\s*reports?|user\s+reports?|reports?\s+(?:about|on|of|from)|"
    r"users?\s+(?:are\s+|were\s+)?(?:saying|reporting|hitting|seeing|telling|upset|angry|unhappy|mad)|"
    r"customers?\s+(?:are\s+)?(?:saying|reporting|complaining|hitting)|feedback|tickets?|reports\b|"
    r"what\s+(?:are|do)\s+(?:users|customers|people)|(?:users|customers)\s+(?:complain|report))",
    re.I,
)
_TREND = re.compile(
    r"\b(?:ris\w*|rose|go(?:ne|ing)?\s+up|went\s+up|up\b|increas\w*|grow\w*|grew|more\b|higher|spik\w*|jump\w*|"
    r"trend\w*|fell|fall\w*|drop\w*|declin\w*|decreas\w*|down\b|fewer|lower|less\b|worse|better|change\s+in|"
    r"moving|moved|compared?|vs\.?|versus|climb\w*|surg\w*)",
    re.I,
)
_WIKI = re.compile(
    r"\b(?:runbooks?|run\s+book|playbooks?|postmortems?|post-mortems?|post\s+mortems?|wiki|docs?\b|documentation|"
    r"how\s+(?:do|can|should)\s+(?:i|we)|how\s+to|procedure|guide|steps\s+to|rollback\s+procedure)",
    re.I,
)
_SYMPTOM = re.compile(
    r"\b(?:error\w*|errs?|fail\w*|broke\w*|break\w*|down|outage|incident|[45]\d\d(?:s|es)?|[45]xx|timeouts?|throw\w*|returning|timing\s+out|"
    r"time\s+outs?|latency|slow\w*|crash\w*|spik\w*|alert\w*|degrad\w*|elevated|root\s+cause|culprit|caus\w*|"
    r"investigat\w*|rca|exceptions?|panic\w*|oom|leak\w*|stuck|hang\w*|not\s+working|doesn'?t\s+work|isn'?t\s+working|"
    r"unavailable|flaky|retries|retry|p99|p95|dropp\w*|declin\w*|rejected|refused|wrong)\b",
    re.I,
)
_LISTING = re.compile(
    r"\b(?:what(?:'s|\s+has|\s+have|\s+was|\s+got)?\s+(?:been\s+)?(?:changed|shipped|landed|deployed|merged|rolled|new|released|pushed)"
    r"|whats\s+new|chang\w*\s+(?:in|to|for|on|of)|deploy\w*\s+(?:in|to|for|on|of)|commits?\s+(?:in|to|for|on|of)|"
    r"list|show|any(?:thing)?\s+(?:new|deploy\w*|chang\w*|commit\w*))",
    re.I,
)
_HELP = re.compile(r"^(?:help|hi|hello|hey|menu|\?|what can you do|commands)\W*$", re.I)
_PATH = re.compile(r"(?:^|\s)(?P<path>[\w.\-]+(?:/[\w.\-*]+)+/?|[\w\-]+\.(?:py|go|ts|tsx|js|yaml|yml|json|sql|md|toml))(?=\s|$|[?,.!])")
_WORD = re.compile(r"[a-z0-9][a-z0-9\-]*", re.I)
_SERVICE_STOP = frozenset(
    "the a an in on of for to and or is are was were what who why how did does do with last past this that "
    "since yesterday today week hours hour days day changes changed change users user team owns owner".split()
)


@dataclass(frozen=True)
class Vocabulary:
    """What the router can name: catalog services and report categories (with descriptions)."""

    services: Sequence[str] = ()
    categories: Sequence[str] = ()
    descriptions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """A routing decision: the tool and its arguments (``menu`` answers without a tool)."""

    tool: str
    args: dict[str, Any] = field(default_factory=dict)


def clean(question: str) -> str:
    """The words of a Slack message: no mentions, link targets, emphasis markers or filters."""
    text = _LINK.sub(lambda m: m.group(1) or " ", question)
    text = _MENTION.sub(" ", text)
    text = _FILTER.sub(" ", text)
    text = _FORMAT.sub(" ", text)
    text = text.replace("’", "'").replace("“", '"').replace("”", '"')
    return " ".join(text.split())


def take_window(text: str) -> tuple[float | None, str]:
    """The time window a question gives, in hours capped at 366 days (None when it gives none), and the text without it."""
    hours, rest = _asked_window(text)
    return (None if hours is None else min(hours, MAX_WINDOW_HOURS)), rest


def window_note(question: str) -> str:
    """The sentence that tells a responder their window was cut to 366 days ("" when it was not)."""
    hours, _ = _asked_window(clean(question))
    return CAPPED_WINDOW if hours is not None and hours > MAX_WINDOW_HOURS else ""


def _asked_window(text: str) -> tuple[float | None, str]:
    """The window as typed, however long ("the last 100000 days"), and the text without it."""
    hours: float | None = None
    for pattern, value in _WINDOW_PATTERNS:
        match = pattern.search(text)
        if not match:
            continue
        if value is None and "count" in pattern.groupindex:
            count_text = match.group("count").lower()
            count = float(count_text) if count_text[0].isdigit() else float(_NUMBER_WORDS.get(count_text, 1))
            unit = match.group("unit").lower()
            key = "min" if unit.startswith("mi") or unit == "m" else unit[0]
            hours = hours if hours is not None else count * _UNIT_HOURS[key]
        elif value == "single":
            hours = hours if hours is not None else _SINGLE_UNIT[match.group("unit").lower()]
        elif isinstance(value, int):
            hours = hours if hours is not None else value
        text = text[: match.start()] + " " + text[match.end() :]
    return hours, " ".join(text.split())


def find_service(text: str, services: Sequence[str]) -> str | None:
    """The catalog service a question names: exact word, a plural/singular, hyphen-less, or a close typo."""
    if not services:
        return None
    lowered = {name.lower(): name for name in services}
    squashed = {name.lower().replace("-", ""): name for name in services}
    words = [word.lower().strip("-") for word in _WORD.findall(text)]
    for size in (3, 2):  # multi-word names typed with spaces: "api gateway", "shared libs"
        for start in range(len(words) - size + 1):
            joined = "".join(words[start : start + size])
            if joined in squashed:
                return squashed[joined]
    for word in words:
        if word in lowered:
            return lowered[word]
        if word.replace("-", "") in squashed:
            return squashed[word.replace("-", "")]
    for word in words:
        for variant in (word + "s", word.removesuffix("s"), word.removesuffix("'s")):
            if variant in lowered and len(variant) > 3:
                return lowered[variant]
    for word in words:
        if len(word) < 5 or word in _SERVICE_STOP:
            continue
        close = difflib.get_close_matches(word, list(lowered), n=1, cutoff=0.8)
        if close:
            return lowered[close[0]]
    return None


def _path(text: str) -> str | None:
    match = _PATH.search(text)
    return match.group("path").rstrip(".,?!") if match else None


def _rank(text: str) -> int | None:
    match = _SUGGESTION.search(text)
    if not match:
        return None
    if match.group("ordinal"):
        return _ORDINALS[match.group("ordinal").lower()]
    return int(match.group("hash") or match.group("num"))


def _days(hours: float | None, default: int = 7) -> int:
    return max(1, round(hours / 24)) if hours else default


def route(question: str, vocabulary: Vocabulary, default_service: str | None = None) -> Route:
    """The tool and arguments for one question (see the module docstring for the order)."""
    text = clean(question)
    hours, rest = take_window(text)
    service = find_service(rest, vocabulary.services)
    path = _path(rest)

    rank = _rank(rest)
    if rank is not None and re.search(r"\b(?:why|explain|detail\w*|more|tell|what|about|evidence|how|show|expand|elaborate|info|reason|justify)\b|#", rest, re.I):
        return Route("suggestion_details", {"rank": rank})
    if _OWNERS.search(rest) and (path or service):
        return Route("service_owners", {"target": path or service})
    if _DEPENDENCIES.search(rest) and service:
        return Route("service_dependencies", {"service": service})
    complaints = _COMPLAINTS.search(rest)
    listing = _LISTING.search(rest) or not _SYMPTOM.search(rest)  # "did payments break after the deploy?" is an RCA
    if _CHANGES.search(rest) and listing and not complaints and (service or default_service):
        args: dict[str, Any] = {"service": service or default_service}
        if hours is not None:
            args["hours"] = hours
        return Route("changes_in_service", args)
    if complaints or _looks_like_category_question(rest, vocabulary):
        topic_text = _COMPLAINTS.sub(" ", rest)
        category = nearest_category(topic_text, vocabulary.categories, vocabulary.descriptions)
        days = _days(hours)
        if category and _TREND.search(topic_text):
            explain = re.search(r"\b(?:why|what\s+(?:caused|made|drove|is\s+behind)|explain|reason)\b", topic_text, re.I)
            return Route("report_rise" if explain else "complaint_trend", {"category": category, "days": days})
        if category:
            return Route("user_complaints", {"topic": category, "days": days})
        return Route("top_complaints", {"days": days})
    if _WIKI.search(rest):
        return Route("search_wiki", {"query": rest})  # a service filter would hide the org-wide runbooks
    if _OWNERS.search(rest) and default_service:
        return Route("service_owners", {"target": default_service})
    if _SYMPTOM.search(rest) and not _HELP.match(rest):
        return Route("investigate_incident", {"symptom": rest, **({"service": service} if service else {})})
    return Route(MENU)


_SUBJECT_ARG = {"changes_in_service": "service", "service_dependencies": "service", "service_owners": "target",
                "investigate_incident": "service"}
_WINDOW_ARG = {"changes_in_service": "hours", "top_complaints": "days", "user_complaints": "days",
               "complaint_trend": "days", "report_rise": "days"}
_CATEGORY_ARG = {"user_complaints": "topic", "complaint_trend": "category", "report_rise": "category"}


_ABOUT = re.compile(
    r"\b(?:what|how)\s+about\s+(?:the\s+|that\s+)?(?P<words>.{1,200}?)\s+(?:change|commit|one|pr|deploy|fix|suggestion)s?\b",
    re.I,
)
_REFERRING = re.compile(
    r"\b(?:it|its|it's|that|this|these|those|them|there|same|service|one|me|us|please|pls|again|then|also|too|now|"
    r"any|anything|all|the|a|an|in|on|of|for|to|and|or|so|what|who|whose|which|show|list|give|tell|about|is|are|was|"
    r"were|did|does|do|has|have|been)\b",
    re.I,
)


def _names_nothing_else(text: str) -> bool:
    """Whether a question is only cue words and references ("show me the changes", "who's on call for it?")."""
    for pattern in (_CHANGES, _OWNERS, _DEPENDENCIES, _LISTING, _REFERRING):
        text = pattern.sub(" ", text)
    return not _WORD.search(text)


def subject_of(earlier: Route) -> str | None:
    """The service an earlier route was about, if it was about one."""
    name = _SUBJECT_ARG.get(earlier.tool)
    value = earlier.args.get(name) if name else None
    return value if isinstance(value, str) else None


def can_follow(earlier: Route) -> bool:
    """Whether a later question lacking a subject can take it from this route."""
    return earlier.tool in _SUBJECT_ARG or earlier.tool in _WINDOW_ARG


def follow_up(
    question: str, vocabulary: Vocabulary, earlier: Route | None, default_service: str | None = None
) -> Route:
    """The route for a question asked after ``earlier`` in the same thread (see the module docstring)."""
    if earlier is None or not can_follow(earlier):
        return route(question, vocabulary, default_service)
    hours, rest = take_window(clean(question))
    about = _ABOUT.search(rest)
    if about and earlier.tool == "investigate_incident":  # "what about the config change?": one of its suggestions
        return Route("suggestion_details", {"about": about.group("words")})
    inherited = subject_of(earlier) if _names_nothing_else(rest) else None  # not "who owns the ledger?"
    decision = route(question, vocabulary, default_service or inherited)
    if decision.tool != MENU:
        return decision
    service = find_service(rest, vocabulary.services)
    category = nearest_category(rest, vocabulary.categories, vocabulary.descriptions) if earlier.tool in _CATEGORY_ARG else None
    args = dict(earlier.args)
    if service and earlier.tool in _SUBJECT_ARG:
        args[_SUBJECT_ARG[earlier.tool]] = service
    if category:
        args[_CATEGORY_ARG[earlier.tool]] = category
    if hours is not None and earlier.tool in _WINDOW_ARG:
        name = _WINDOW_ARG[earlier.tool]
        args[name] = hours if name == "hours" else _days(hours)
    return Route(earlier.tool, args) if args != earlier.args else decision


_YES_NO = re.compile(r"^(?:so\s+|and\s+|hey\s+)?(?:did|are|is|has|have|were|was|do|does)\b", re.I)
_RCA_CUES = re.compile(
    r"\b(?:what\s+broke|root\s+cause|culprit|caus\w*|after\s+the\s+deploy|which\s+change|what\s+changed)\b"
    r"|\b(?:is|are)\s+(?:\S+\s+){1,3}(?:down|broken|failing|erroring|dead)\b",
    re.I,
)


def _looks_like_category_question(text: str, vocabulary: Vocabulary) -> bool:
    """"are crashes increasing?": a yes/no question on a category's trend, without saying "complaints"."""
    if not (_YES_NO.search(text) and _TREND.search(text)) or _RCA_CUES.search(text):
        return False
    return nearest_category(_TREND.sub(" ", text), vocabulary.categories, vocabulary.descriptions) is not None


def menu_text(vocabulary: Vocabulary) -> str:
    """What the router can answer, with examples drawn from this install's catalog and categories."""
    service = vocabulary.services[0] if vocabulary.services else "payments"
    category = vocabulary.categories[0] if vocabulary.categories else "login"
    return "\n".join([
        "I'm not sure what you're asking. I can answer:",
        f"• *what broke*: `why is {service} returning 502s?` (an RCA of the symptom)",
        f"• *recent changes*: `what changed in {service} in the last 6 hours?`",
        f"• *owners and on-call*: `who owns {service}?`, `who owns services/{service}/api.py?`",
        f"• *dependencies*: `what depends on {service}?`",
        "• *a suggestion in this thread*: `why #2?`",
        f"• *user complaints*: `what are users complaining about this week?`, `did {category} complaints rise?`",
        "• *runbooks and postmortems*: `runbook for a database failover`",
    ])
