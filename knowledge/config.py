"""Settings read from the environment (prefix ``CULPRIT_``) with embedded defaults.

Only entry points (the CLI commands, ``culprit serve`` and the demo) call
:func:`get_settings`; they pass the :class:`Settings`, or just the values a
function needs (a database URL, the data directory), down to every layer. So
nothing below ``bot/`` reads the environment, and a test can hand any function
the database and directories it wants.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide configuration; defaults run fully offline on SQLite and local Chroma."""

    model_config = SettingsConfigDict(env_prefix="CULPRIT_", extra="ignore")

    data_dir: Path = Path(".culprit")
    database_url: str | None = None
    chroma_url: str | None = None

    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str = "EMPTY"
    llm_timeout_s: float = 20.0

    window_days: int = 14
    batch_size: int = 20
    min_confidence: float = 0.5
    ranker_path: Path | None = None

    slack_bot_token: str | None = Field(default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN"))
    slack_signing_secret: str | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET")
    )
    slack_app_token: str | None = Field(default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN"))
    slack_api_url: str | None = None

    incident_channel_pattern: str = "inc-*"
    incident_channels: list[str] = []
    allowed_channels: list[str] = []
    allowed_users: list[str] = []
    user_rate_limit_per_minute: int = 10

    reports_token: str | None = None
    reports_channel: str | None = None
    report_retention_days: int = 90
    alerts_channel: str | None = None
    digest_channel: str | None = None
    digest_timezone: str = "UTC"
    digest_day_of_week: str = "mon"
    digest_hour: int = 9
    other_confidence: float = 0.4

    @property
    def llm_configured(self) -> bool:
        """An LLM is used only when both its server and its model are named."""
        return bool(self.llm_base_url and self.llm_model)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'culprit.db').resolve()}"

    @property
    def resolved_ranker_path(self) -> Path:
        """Where `culprit train` writes the local judge and where `rca` and `serve` read it."""
        return self.ranker_path or self.data_dir / "models" / "ranker.model"

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The cached settings; call ``get_settings.cache_clear()`` after changing the environment."""
    return Settings()
