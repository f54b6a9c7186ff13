"""The demo's bug reports: months of user reports with weekly rhythm and a few injected outages.

Real report streams rise at the weekend and fall midweek, and an outage shows
as one category jumping for a day or two. The generator reproduces both and
returns the outages it injected, so spike detection is tested against a known
answer. Some reports carry e-mails, phones and tokens, as real ones do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np

DEMO_CATEGORIES: dict[str, dict[str, object]] = {
    "login": {
        "description": "Users cannot sign in, stay signed in, or reset their password.",
        "rate": 8.0,
        "templates": [
            "can't log in, it says {error}",
            "login keeps failing on my {device}",
            "password reset email never arrives",
            "I get logged out every time I open the app",
            "two factor code is rejected, {error}",
            "sign in button does nothing on {device}",
            "stuck on the login screen since {when}",
            "it says wrong password but the password is right",
        ],
    },
    "feed not loading": {
        "description": "The home feed stays empty, spins forever or shows old posts.",
        "rate": 10.0,
        "templates": [
            "feed is not loading, just a spinner",
            "home feed is empty since {when}",
            "my feed shows posts from days ago and won't refresh",
            "pull to refresh does nothing, feed stuck",
            "timeline won't load on {device}, {error}",
            "feed loads forever then says {error}",
            "no posts in my feed at all",
            "the feed keeps showing the same old stories",
        ],
    },
    "payments": {
        "description": "Purchases, subscriptions, refunds and charges.",
        "rate": 4.0,
        "templates": [
            "I was charged twice for my subscription",
            "payment fails with {error}",
            "my card {card} was declined but the bank says it's fine",
            "subscription renewed after I cancelled, refund please",
            "can't buy premium on {device}",
            "checkout page hangs after I enter my card",
        ],
    },
    "notifications": {
        "description": "Push notifications missing, late or duplicated.",
        "rate": 6.0,
        "templates": [
            "I don't get push notifications anymore",
            "notifications arrive hours late",
            "getting the same notification five times",
            "notification sound stopped working on {device}",
            "no alerts for new messages since {when}",
            "tapping a notification opens the wrong screen",
        ],
    },
    "crash": {
        "description": "The app closes, freezes or crashes.",
        "rate": 5.0,
        "templates": [
            "app crashes when I open it",
            "crashes every time I upload a photo on {device}",
            "the app freezes and closes after the update",
            "it crashes right after the splash screen",
            "app keeps crashing when I open settings",
            "black screen then it closes, {device}",
        ],
    },
    "slow performance": {
        "description": "The app is slow, laggy or drains the battery.",
        "rate": 7.0,
        "templates": [
            "the app is so slow lately",
            "scrolling is laggy on {device}",
            "takes a minute to open the app",
            "battery drains fast since {when}",
            "everything takes forever to load",
            "videos buffer constantly even on wifi",
        ],
    },
}

OUTAGE_MIN_EXTRA = 25.0
WEEKDAY_FACTORS = (0.9, 0.85, 0.85, 0.9, 1.0, 1.35, 1.4)
_ERRORS = ("error 500", "'something went wrong'", "network error", "timeout", "code 401")
_DEVICES = ("iPhone 13", "Pixel 7", "Galaxy S21", "iPad", "my tablet", "Android 14")
_WHEN = ("yesterday", "this morning", "the last update", "Monday", "two days")
_PERSONAL = (
    " contact me at {name}@example.com",
    " call me on +1 415 555 0{n:03d}",
    " my ip is 203.0.113.{n}",
    " link https://app.example.com/reset?token=abc{n}def{n}",
)
_CARDS = ("4111 1111 1111 1111", "5500 0000 0000 0004")
_OPENINGS = ("", "hi, ", "ugh, ", "please help: ", "since the update ", "again: ", "hello team, ", "")
_CLOSINGS = ("", "", " thanks", " fix it please", "!!", " (app {version})", " on {version}", " so annoying")


@dataclass(frozen=True)
class InjectedSpike:
    """An outage: ``category`` ran ``factor`` times its rate (and at least 25 reports a day more) from ``start`` to ``end``."""

    category: str
    start: date
    end: date
    factor: float


@dataclass(frozen=True)
class DemoReports:
    reports: list[dict[str, str]]
    spikes: list[InjectedSpike]
    first_day: date
    last_day: date


def demo_reports(days: int = 120, end: date = date(2025, 6, 29), seed: int = 7) -> DemoReports:
    """Reports as ``{id, text, category, created_at}`` dicts, the injected spikes, and the date range."""
    rng = np.random.default_rng(seed)
    first_day = end - timedelta(days=days - 1)
    spikes = _choose_spikes(rng, first_day, days)
    reports: list[dict[str, str]] = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        for category, spec in DEMO_CATEGORIES.items():
            rate = float(spec["rate"]) * WEEKDAY_FACTORS[day.weekday()]  # type: ignore[arg-type]
            factor = next((s.factor for s in spikes if s.category == category and s.start <= day <= s.end), 1.0)
            rate = rate if factor == 1.0 else max(rate * factor, rate + OUTAGE_MIN_EXTRA)
            for _ in range(int(rng.poisson(rate))):
                reports.append(_report(rng, len(reports), category, spec, day))
    return DemoReports(reports=reports, spikes=spikes, first_day=first_day, last_day=end)


def _choose_spikes(rng: np.random.Generator, first_day: date, days: int) -> list[InjectedSpike]:
    """Outages after five weeks of history (the detector's baseline), at least ten days apart."""
    categories = list(DEMO_CATEGORIES)
    starts = np.linspace(40, days - 8, num=4).astype(int) + rng.integers(-3, 3, size=4)
    spikes = []
    for index, start in enumerate(starts):
        begin = first_day + timedelta(days=int(start))
        length = int(rng.integers(1, 3))
        category = categories[int(rng.integers(0, len(categories)))] if index else "feed not loading"
        spikes.append(InjectedSpike(category, begin, begin + timedelta(days=length - 1), float(rng.uniform(4.0, 6.0))))
    return spikes


def _report(rng: np.random.Generator, number: int, category: str, spec: dict[str, object], day: date) -> dict[str, str]:
    templates: list[str] = spec["templates"]  # type: ignore[assignment]
    text = templates[int(rng.integers(0, len(templates)))].format(
        error=_ERRORS[int(rng.integers(0, len(_ERRORS)))],
        device=_DEVICES[int(rng.integers(0, len(_DEVICES)))],
        when=_WHEN[int(rng.integers(0, len(_WHEN)))],
        card=_CARDS[int(rng.integers(0, len(_CARDS)))],
    )
    version = f"4.{int(rng.integers(0, 30))}.{int(rng.integers(0, 10))}"
    text = _OPENINGS[int(rng.integers(0, len(_OPENINGS)))] + text
    text += _CLOSINGS[int(rng.integers(0, len(_CLOSINGS)))].format(version=version)
    if rng.random() < 0.6:
        text += f" (since {int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}, tried {int(rng.integers(2, 9))} times)"
    if rng.random() < 0.08:
        text += _PERSONAL[int(rng.integers(0, len(_PERSONAL)))].format(name=f"user{number}", n=number % 250)
    moment = datetime.combine(day, time(), UTC) + timedelta(seconds=int(rng.integers(0, 86400)))
    return {"id": f"demo-{number}", "text": text, "category": category, "created_at": moment.isoformat()}
