"""``culprit serve``: the Slack bot over HTTP (uvicorn) or Socket Mode."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import typer

from bot.cli.console import errors
from knowledge.errors import CulpritError

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler
    from slack_sdk import WebClient

    from knowledge.config import Settings


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
    """JSON lines on stderr; ``structlog.contextvars`` puts the incident id on every line.

    Standard-library loggers (uvicorn, APScheduler, SQLAlchemy, slack_sdk) go
    through the same processors, so a log shipper parses one format and a line
    uvicorn writes while an incident is handled carries its id too. Every line, its traceback included,
    goes out without a database error's message or a URL's password (:mod:`bot.log_redaction`).
    """
    import structlog

    from bot.log_redaction import redact_exceptions

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact_exceptions,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # an earlier dictConfig may have given them their own
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    structlog.configure(
        processors=[
            *shared,
            redact_exceptions,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def start_jobs(settings: Settings, client: WebClient) -> BackgroundScheduler:
    """The scheduled jobs (weekly digest, spike checks, retention, unsent answers); each posts once across replicas."""
    from bot.jobs import start_scheduler
    from bot.replies import channel_poster

    return start_scheduler(channel_poster(client), settings, client)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to bind (Slack events in HTTP mode; /reports, /healthz, /metrics always)."),
        port: int = typer.Option(3000, min=0, max=65535, help="Port to bind (0: any free one)."),
        socket_mode: bool = typer.Option(False, "--socket-mode", help="Connect out over Socket Mode (needs SLACK_APP_TOKEN)."),
        no_scheduler: bool = typer.Option(False, "--no-scheduler", help="Do not run scheduled jobs (for extra replicas)."),
    ) -> None:
        """Run the Slack bot: /rca, mentions in incident channels, feedback buttons."""
        from knowledge.config import get_settings

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
        from bot.doctor import log_startup_checks

        log_startup_checks(settings)  # `culprit doctor` runs these and the slower ones
        bolt = create_app(settings, warm_up=True)
        scheduler = None if no_scheduler else start_jobs(settings, bolt.client)
        try:
            import uvicorn

            from bot.server import create_server

            handler = None
            if socket_mode:
                from slack_bolt.adapter.socket_mode import SocketModeHandler

                errors.print(f"culprit is connecting to Slack over Socket Mode; /reports, /healthz on {host}:{port}")
                handler = SocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
            server = create_server(bolt, settings, socket_mode=handler)
            uvicorn.run(server, host=host, port=port, log_level="info", log_config=None)
        finally:
            if scheduler is not None:
                from knowledge.sources.mirrors import stop_fetches

                scheduler.shutdown(wait=False)
                stop_fetches()  # a poll's thread dies with the bot; its git, stalled on a remote, would not
