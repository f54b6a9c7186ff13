"""The report category a responder's words mean: "login complaints", "people can't pay", "app keeps crashing".

Categories are whatever the store holds (expert-defined or discovered), so the
match is lexical and forgiving: word stems against the category's name and
its description and examples, a few everyday synonyms of common complaint
areas, then the closest spelling.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are about any app around been being did do does for from get getting has have in is it its "
    "me more much of on or our people saying say the their them they this to up user users was were what "
    "whats which with why how many complain complaining complaint complaints report reports reported "
    "reporting issue issues problem problems bug bugs ticket tickets feedback lately recently".split()
)
# Everyday words for the areas most apps' reports fall into, keyed by a stem of the area's name.
SYNONYMS: Mapping[str, tuple[str, ...]] = {
    "login": ("log", "logging", "signin", "sign", "signing", "password", "auth", "authentication", "2fa",
              "otp", "session", "logged", "locked", "account"),
    "payment": ("pay", "paying", "card", "cards", "charge", "charged", "billing", "refund", "checkout",
                "stripe", "purchase", "subscription", "declined"),
    "crash": ("crashes", "crashing", "crashed", "freeze", "freezes", "freezing", "closes", "quits", "force"),
    "slow": ("slowness", "lag", "lags", "laggy", "latency", "sluggish", "performance", "loading", "takes",
             "forever", "speed"),
    "notification": ("notif", "notifs", "push", "alerts", "emails", "email", "sms"),
    "feed": ("timeline", "home", "posts", "scroll", "scrolling", "blank", "empty"),
}


def _stem(word: str) -> str:
    for suffix in ("ations", "ation", "ings", "ing", "ies", "es", "s", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _words(text: str) -> list[str]:
    return [word for word in _WORD.findall(text.lower()) if word not in _STOP]


def nearest_category(topic: str, categories: Sequence[str], descriptions: Mapping[str, str] | None = None) -> str | None:
    """The category ``topic`` names or means; None when no word of it points anywhere."""
    words = _words(topic)
    if not words or not categories:
        return None
    lowered = {category.lower(): category for category in categories}
    joined = " ".join(words)
    if joined in lowered:
        return lowered[joined]
    stems = {_stem(word) for word in words}
    scores: dict[str, float] = {}
    for category in categories:
        name_stems = {_stem(word) for word in _words(category)}
        extra = {_stem(word) for word in _words((descriptions or {}).get(category, ""))}
        synonyms = {_stem(word) for stem in name_stems for key, words_ in SYNONYMS.items() if _stem(key) == stem for word in words_}
        score = 3.0 * len(stems & name_stems) + 1.0 * len(stems & synonyms) + 0.5 * len(stems & extra)
        if score:
            scores[category] = score
    if scores:
        return max(sorted(scores), key=lambda name: scores[name])
    for word in words:  # typos: "logn", "paymnets", "notifcations"
        close = difflib.get_close_matches(word, [w for c in categories for w in _words(c)], n=1, cutoff=0.75)
        if close:
            return next(category for category in categories if close[0] in _words(category))
    return None
