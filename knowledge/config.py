"""Settings read from the environment (prefix ``CULPRIT_``) with embedded defaults.

Only entry points (the CLI commands, ``culprit serve`` and the demo) call
:func:`get_settings`; they pass the :class:`Settings`, or just the values a
function needs (a database URL, the data directory), down to every layer. So
nothing below ``bot/`` reads the environment, and a test can hand any function
the database and directories it wants.

Every value is checked when the settings are read, so a bad one stops the
command before it touches anything, as one line per variable that names it and
says what to set (:class:`ConfigurationError`), instead of a traceback later.
Tokens and secrets are :class:`~pydantic.SecretStr`: they print as ``**********``
and only ``get_secret_value()``, where a client needs them, reveals them.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from knowledge.errors import CulpritError

ENV_PREFIX = "CULPRIT_"
CHANNEL_LIST = 'a JSON list of channel ids, e.g. ["C0123","C0456"]'
# Read as text and parsed by _json_list, so a value that is not JSON is a validation error that names it.
JsonList = Annotated[list[str], NoDecode]


class ConfigurationError(CulpritError):
    """A setting from the environment cannot be used; the message names the variable and the fix."""


class Settings(BaseSettings):
    """Process-wide configuration; defaults run fully offline on SQLite and local Chroma.

    Each field's ``description`` is the fix a user is told when its value is refused.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    data_dir: Path = Field(
        Path(".culprit"), validate_default=True, description="a folder culprit can read and write (created if missing)"
    )
    database_url: str | None = Field(
        None, description="an SQLAlchemy URL such as postgresql+psycopg://user:password@host:5432/culprit"
    )
    chroma_url: str | None = None

    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr = SecretStr("EMPTY")
    llm_timeout_s: float = Field(20.0, gt=0, description="a number of seconds above 0")

    window_days: int = Field(14, ge=1, description="a whole number of days, 1 or more")
    # tools.rca.election keeps 5 finalists per round, so a batch must hold more to shrink the field.
    batch_size: int = Field(20, ge=6, description="a whole number of changes above 5 (each round keeps 5)")
    min_confidence: float = Field(0.5, ge=0, le=1, description="a confidence from 0 to 1, e.g. 0.5")
    # When set, replaces min_confidence: the threshold is read off the model's held-out precision curve.
    target_precision: float | None = Field(None, gt=0, le=1, description="a precision above 0 and at most 1, e.g. 0.9")
    ranker_path: Path | None = None

    slack_bot_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET")
    )
    slack_app_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN"))
    slack_api_url: str | None = None

    incident_channel_pattern: str = "inc-*"
    incident_channels: JsonList = Field([], description=CHANNEL_LIST)
    allowed_channels: JsonList = Field([], description=CHANNEL_LIST)
    allowed_users: JsonList = Field([], description='a JSON list of user ids, e.g. ["U0123"]')
    user_rate_limit_per_minute: int = Field(10, ge=1, description="a whole number of requests, 1 or more")

    reports_token: SecretStr | None = None
    metrics_token: SecretStr | None = None
    reports_channel: str | None = None
    report_retention_days: int = Field(90, ge=1, description="a whole number of days, 1 or more")
    alerts_channel: str | None = None
    digest_channel: str | None = None
    digest_timezone: str = Field("UTC", description='an IANA time zone such as "UTC" or "Europe/Paris"')
    digest_day_of_week: str = Field(
        "mon", description='a day such as "mon", or days as cron writes them ("mon-fri", "mon,thu")'
    )
    digest_hour: int = Field(9, ge=0, le=23, description="an hour of the day from 0 to 23")
    other_confidence: float = Field(0.4, ge=0, le=1, description="a confidence from 0 to 1, e.g. 0.4")

    @field_validator("data_dir")
    @classmethod
    def _usable_folder(cls, path: Path) -> Path:
        if path.exists() and not path.is_dir():
            raise ValueError("this is a file, not a folder")
        if path.is_dir() and not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            raise ValueError("this folder cannot be read and written by this user")
        return path

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, url: str | None) -> str | None:
        # Imported here: only a set URL needs SQLAlchemy.
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        if url is not None:
            try:
                make_url(url)
            except (ArgumentError, ValueError):  # a bad port is a ValueError
                raise ValueError("not a database URL") from None
        return url

    @field_validator("incident_channels", "allowed_channels", "allowed_users", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValueError("not JSON") from None
        return value

    @field_validator("digest_timezone")
    @classmethod
    def _time_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("no such time zone") from None
        return name

    @field_validator("digest_day_of_week")
    @classmethod
    def _days(cls, days: str) -> str:
        # The scheduler's own parser decides; imported only when the day is set.
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger(day_of_week=days, timezone="UTC")
        except ValueError as error:
            raise ValueError(str(error)) from None
        return days

    @property
    def llm_configured(self) -> bool:
        """An LLM is used only when both its server and its model are named."""
        return bool(self.llm_base_url and self.llm_model)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside the data directory.

        It may hold a password: show it only through :func:`masked_url`.
        """
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


def masked_url(url: str) -> str:
    """``url`` fit to print or log: its password, if any, becomes ``***``."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _variable(field: str) -> str:
    """The environment variable that sets ``field``."""
    alias = Settings.model_fields[field].validation_alias
    return str(alias.choices[0]) if isinstance(alias, AliasChoices) else ENV_PREFIX + field.upper()


def _explain(error: ErrorDetails) -> str:
    """One line: the variable and the value set (unless secret), what is wrong, and what to set instead."""
    by_variable = {_variable(name): name for name in Settings.model_fields}
    field = by_variable.get(str(error["loc"][0]), str(error["loc"][0]))  # an aliased field is reported by its alias
    info = Settings.model_fields[field]
    secret = field == "database_url" or info.annotation is SecretStr or SecretStr in get_args(info.annotation)
    variable = _variable(field)
    given = "" if secret or variable not in os.environ else f"={os.environ[variable]}"
    item = "".join(f"item {place}: " for place in error["loc"][1:])
    problem = error["msg"].removeprefix("Value error, ")
    fix = info.description or "a valid value"
    return f"{variable}{given}: {item}{problem[0].lower()}{problem[1:]}; set it to {fix}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The cached settings, or a :class:`ConfigurationError` with one line per bad variable.

    Call ``get_settings.cache_clear()`` after changing the environment.
    """
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigurationError("\n".join(_explain(detail) for detail in error.errors())) from None
