"""A live bot against the fake Slack Web API, on a real store seeded with changes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from knowledge.changes import Change, ChangeFile
from knowledge.config import Settings, get_settings
from knowledge.db import migrate, session_scope, utcnow
from knowledge.services import Service
from tests.bot.fake_slack import FakeSlack, FakeSlackServer
from tests.bot.fake_socket_mode import FakeSocketMode
from tests.bot.live import LiveServer
from tests.bot.slack_requests import SIGNING_SECRET, SlackSender

INCIDENT_CHANNEL = "CINC1"
QUIET_CHANNEL = "CGENERAL"
CHANNEL_NAMES = {INCIDENT_CHANNEL: "inc-checkout", QUIET_CHANNEL: "general", "CREPORTS": "user-feedback"}

# (service, title, path, hours before now)
SEEDED_CHANGES = [
    ("payments", "payments: switch card tokenizer to the v2 client", "services/payments/tokenizer.py", 2),
    ("payments", "payments: retry declined card payments once", "services/payments/retry.py", 5),
    ("payments", "payments: raise gateway timeout to 8s", "services/payments/config/gateway.yaml", 9),
    ("checkout", "checkout: new address form validation", "services/checkout/address.py", 3),
    ("checkout", "checkout: render cart totals with currency", "services/checkout/cart.py", 12),
    ("checkout", "checkout: migrate orders table to bigint ids", "services/checkout/migrations/0042_bigint.sql", 20),
    ("search", "search: tune ranking boost for new items", "services/search/ranking.py", 4),
    ("search", "search: cache facets for 60s", "services/search/facets.py", 30),
    ("auth", "auth: rotate session signing keys", "services/auth/keys.py", 7),
    ("auth", "auth: add rate limit to password reset", "services/auth/reset.py", 40),
    ("feed", "feed: paginate home feed with cursors", "services/feed/pagination.py", 15),
    ("feed", "feed: drop legacy image sizes", "services/feed/images.py", 60),
]


def seed_changes(database_url: str, now: datetime) -> list[str]:
    """A small organisation's last few days of changes; returns their ids."""
    ids = []
    with session_scope(database_url) as session:
        for service, owner in [("payments", "team-payments"), ("checkout", "team-checkout"), ("search", "team-search"), ("auth", "team-identity"), ("feed", "team-feed")]:
            session.add(Service(name=service, owner=owner, path_globs=[f"services/{service}/**"], depends_on=["payments"] if service == "checkout" else []))
        for number, (service, title, path, hours) in enumerate(SEEDED_CHANGES):
            change_id = f"{number:02d}" + "c0ffee" * 6
            landed = now - timedelta(hours=hours)
            change = Change(
                id=change_id[:40],
                repo="shop",
                title=title,
                body=f"{title}.\n\nTouches {path}.",
                author=f"dev{number}@example.com".split("@")[0],
                author_time=landed - timedelta(minutes=30),
                landed_time=landed,
                added=10 + number,
                deleted=number,
                n_files=1,
                directories=[path.rsplit("/", 1)[0]],
                services=[service],
            )
            change.files = [ChangeFile(position=0, path=path, added=10 + number, deleted=number)]
            session.add(change)
            ids.append(change.id)
    return ids


@pytest.fixture
def store(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite store with the seeded changes."""
    url = f"sqlite:///{data_dir / 'culprit.db'}"
    monkeypatch.setenv("CULPRIT_DATABASE_URL", url)
    get_settings.cache_clear()
    migrate(url)
    seed_changes(url, utcnow())
    return url


@dataclass
class Bot:
    """A running bot: what Slack recorded, a signed-request sender, and the store behind it."""

    slack: FakeSlack
    send: SlackSender
    url: str
    database_url: str
    settings: Settings
    socket: FakeSocketMode | None = None  # Slack's end of the WebSocket, for a bot in Socket Mode
    app: Any = None  # the Bolt app, for what the server does to it on SIGTERM (bot.app.finish_acked_replies)

    def posted(self, method: str = "chat.postMessage", **match: Any) -> list[Any]:
        return [
            call for call in self.slack.calls_to(method) if all(call.args.get(k) == v for k, v in match.items())
        ]

    def metric(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels``, as ``/metrics`` says (process-wide)."""
        return sum(
            sample.value
            for family in text_string_to_metric_families(httpx.get(f"{self.url}/metrics").text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def wait_for_metric(self, name: str, count: float, timeout: float = 30.0, **labels: str) -> None:
        """Block until ``metric(name, **labels)`` reaches ``count``; fail loudly otherwise."""
        deadline = time.monotonic() + timeout
        while (seen := self.metric(name, **labels)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the server counted {seen} {name} {labels}, expected {count}")
            time.sleep(0.05)

    def dropped(self, reason: str) -> float:
        """Requests the server's guards stopped for ``reason``, as its ``/metrics`` says (process-wide)."""
        return self.metric("culprit_slack_requests_dropped_total", reason=reason)

    def wait_until_dropped(self, reason: str, count: float, timeout: float = 30.0) -> None:
        """Block until the server has counted ``count`` requests dropped for ``reason``; fail loudly otherwise."""
        self.wait_for_metric("culprit_slack_requests_dropped_total", count, timeout, reason=reason)


StartBot = Callable[..., Bot]


@pytest.fixture
def start_bot(monkeypatch: pytest.MonkeyPatch) -> Iterator[StartBot]:
    """Start fake Slack and the real server (uvicorn on loopback) for a store; stopped after the test.

    With ``socket_mode=True`` the bot connects to a local Socket Mode server
    (``bot.socket``) as ``culprit serve --socket-mode`` does, and its HTTP
    server keeps ``/reports``, ``/healthz`` and ``/metrics``.
    """
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.app import create_app
    from bot.server import create_server

    with ExitStack() as stack:

        def start(
            database_url: str, *, env: dict[str, str] | None = None, socket_mode: bool = False, **app_options: Any
        ) -> Bot:
            # Slack's Web API is the one part faked: tests cannot reach slack.com (see fake_slack.py).
            fake = FakeSlackServer(FakeSlack(channel_names=dict(CHANNEL_NAMES)))
            slack = stack.enter_context(fake)
            socket = stack.enter_context(FakeSocketMode()) if socket_mode else None
            slack.socket_mode_url = socket.url if socket else ""
            for name, value in {
                "SLACK_BOT_TOKEN": "xoxb-test-token",
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                **({"SLACK_APP_TOKEN": "xapp-test-token"} if socket_mode else {}),
                "CULPRIT_SLACK_API_URL": fake.api_url,
                "CULPRIT_DATABASE_URL": database_url,
                **(env or {}),
            }.items():
                monkeypatch.setenv(name, value)
            get_settings.cache_clear()
            settings = get_settings()
            app = create_app(settings, **app_options)
            # Bolt only logs what a listener or middleware raised: keep it and fail the test at teardown.
            errors: list[BaseException] = []
            app.error(lambda error: errors.append(error))
            stack.callback(_raise_first, errors)
            handler = SocketModeHandler(app, "xapp-test-token") if socket_mode else None
            server = create_server(app, settings, socket_mode=handler)
            # The server's lifespan connects the Socket Mode handler, as under `culprit serve`.
            url = stack.enter_context(LiveServer(server, lifespan="on" if socket_mode else "off"))
            sender = SlackSender(url, response_url=fake.response_url("rca"))
            stack.callback(sender.close)
            return Bot(slack=slack, send=sender, url=url, database_url=database_url, settings=settings, socket=socket, app=app)

        yield start


def _raise_first(errors: list[BaseException]) -> None:
    if errors:
        raise AssertionError(f"the bot raised while handling a request: {errors[0]!r}") from errors[0]


def raising(error: Exception) -> Callable[..., Any]:
    """A stand-in for a step a listener calls that fails with ``error``, as a bug there would."""

    def step(*args: Any, **kwargs: Any) -> Any:
        raise error

    return step
