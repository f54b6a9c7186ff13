"""``culprit serve``: the Slack bot over HTTP (uvicorn) or Socket Mode."""

from __future__ import annotations

import importlib.util
import logging
import sys
from typing import Any

import structlog
import typer

from bot.cli.console import errors
from knowledge.config import Settings, get_settings
from knowledge.errors import CulpritError


def missing_slack_settings(settings: Settings, socket_mode: bool) -> list[str]:
    """The environment variables this mode needs and that are not set."""
    needed = {
        "SLACK_BOT_TOKEN": settings.slack_bot_token,
        **(
            {"SLACK_APP_TOKEN": settings.slack_app_token}
            if socket_mode
            else {"SLACK_SIGNING_SECRET": settings.slack_signing_secret}
        ),
    }
    return [name for name, value in needed.items() if not value]


def configure_logging() -> None:
    """JSON lines on stderr; ``structlog.contextvars`` puts the incident id on every line."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def start_jobs(settings: Settings, client: Any) -> Any | None:
    """The scheduled jobs (digest, spike checks, retention) when this install has them."""
    if importlib.util.find_spec("bot.jobs") is None:
        return None
    from bot import jobs

    return jobs.start_scheduler(settings, client)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to bind in HTTP mode."),
        port: int = typer.Option(3000, help="Port in HTTP mode."),
        socket_mode: bool = typer.Option(False, "--socket-mode", help="Connect out over Socket Mode (needs SLACK_APP_TOKEN)."),
        no_scheduler: bool = typer.Option(False, "--no-scheduler", help="Do not run scheduled jobs (for extra replicas)."),
    ) -> None:
        """Run the Slack bot: /rca, mentions in incident channels, feedback buttons."""
        settings = get_settings()
        missing = missing_slack_settings(settings, socket_mode)
        if missing:
            raise CulpritError(
                f"Slack is not configured: set {' and '.join(missing)} (see docs/slack.md to create the app)"
            )
        from bot.app import create_app
        from knowledge.db import migrate

        configure_logging()
        migrate(settings.resolved_database_url)
        bolt = create_app(settings)
        scheduler = None if no_scheduler else start_jobs(settings, bolt.client)
        try:
            if socket_mode:
                from slack_bolt.adapter.socket_mode import SocketModeHandler

                errors.print("culprit is connecting to Slack over Socket Mode")
                SocketModeHandler(bolt, settings.slack_app_token).start()
            else:
                import uvicorn

                from bot.server import create_server

                uvicorn.run(create_server(bolt, settings), host=host, port=port, log_level="info")
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
