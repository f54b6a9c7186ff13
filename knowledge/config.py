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
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from knowledge.errors import CulpritError

ENV_PREFIX = "CULPRIT_"
CHANNEL_LIST = 'a JSON list of channel ids, e.g. ["C0123","C0456"]'
RETENTION = "a whole number of days from 1 to 3650 (ten years)"
# Servers culprit calls over HTTP: a value without a scheme or host fails only later, far from the setting.
HTTP_URLS = ("chroma_url", "llm_base_url", "slack_api_url")
# Secrets culprit checks on incoming requests, chosen by the operator: a short one is guessed by whoever reaches
# the port (a bearer token is compared as is, an HMAC key as short as "x" signs anything an attacker likes).
SHARED_SECRETS = (
    "reports_token", "metrics_token", "changes_token", "github_webhook_secret", "gitlab_webhook_token",
    "pagerduty_webhook_secret", "incidents_webhook_secret",
)
SLACK_CREDENTIALS = ("slack_bot_token", "slack_signing_secret", "slack_app_token")
MIN_SECRET_CHARS = 16
SHARED_SECRET = (
    f"a random string of at least {MIN_SECRET_CHARS} characters (e.g. `openssl rand -hex 32`), "
    "or nothing to switch it off"
)
SLACK_CREDENTIAL = "the value from the Slack app's settings page, or nothing"
# A value longer than this is cut when an error line quotes it, so a pasted file does not flood the terminal.
SHOWN_VALUE_CHARS = 200
# Read as text and parsed by _json_list, so a value that is not JSON is a validation error that names it.
JsonList = Annotated[list[str], NoDecode]
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


class ConfigurationError(CulpritError):
    """A setting from the environment cannot be used; the message names the variable and the fix."""


class TrackedRepo(BaseModel):
    """A repository culprit keeps current on its own: a bare mirror of ``branch`` polled and pushed by webhooks.

    ``url`` (https, ssh, file) or ``path`` (a local clone). Credentials never sit in
    the URL: ``token_env`` names the environment variable holding an HTTPS token,
    which git receives through its environment, so it shows in no log, error or
    process list.
    """

    model_config = {"extra": "forbid", "frozen": True}

    name: str = Field(min_length=1, max_length=200, pattern=r"^[\w.-]+(/[\w.-]+)*$")
    url: str | None = None
    path: Path | None = None
    branch: str = Field("main", min_length=1, max_length=255, pattern=r"^[\w./-]+$")
    token_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @model_validator(mode="after")
    def _one_location(self) -> TrackedRepo:
        if (self.url is None) == (self.path is None):
            raise ValueError(f"repository {self.name!r} needs exactly one of url or path")
        if self.url is not None and self.url.startswith("-"):
            # git would read it as an option (``--upload-pack=...`` runs a command), not a place
            raise ValueError(f"repository {self.name!r}: a url cannot start with '-'")
        if self.url is not None and _holds_password(self.url):
            raise ValueError(
                f"repository {self.name!r}: the url holds a password; put the token in an environment "
                "variable and name it in token_env"
            )
        if ".." in self.branch.split("/") or self.branch.startswith("-"):
            raise ValueError(f"repository {self.name!r}: {self.branch!r} is not a branch name")
        return self

    @property
    def location(self) -> str:
        """Where git fetches from (never holds a credential, so it may be logged)."""
        return self.url if self.url is not None else str(Path(self.path or ".").resolve())


class WikiSource(BaseModel):
    """A wiki kept current on a schedule: a Confluence space (``url``, ``space``, ``username`` and the
    variable ``token_env`` naming its API token), a Notion export folder or a Slack export zip (``path``)."""

    model_config = {"extra": "forbid", "frozen": True}

    kind: Literal["confluence", "notion", "slack"]
    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w.-]+$")
    url: str | None = Field(None, pattern=r"^https?://")
    space: str | None = Field(None, min_length=1, max_length=255)
    username: str | None = None
    token_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    path: Path | None = None

    @model_validator(mode="after")
    def _complete(self) -> WikiSource:
        if self.kind == "confluence" and not (self.url and self.space):
            raise ValueError(f"wiki source {self.name!r}: Confluence needs url and space")
        if self.kind != "confluence" and self.path is None:
            raise ValueError(f"wiki source {self.name!r}: a {self.kind} export needs path")
        if self.url is not None and _holds_password(self.url):
            raise ValueError(
                f"wiki source {self.name!r}: the url holds a password; put the API token in an environment "
                "variable and name it in token_env"
            )
        return self


def _empty(value: Any) -> bool:
    """Whether an environment value is blank, which compose writes for a variable left unset."""
    return isinstance(value, str) and not value.strip()


def _holds_password(url: str) -> bool:
    """Whether ``url`` carries a password before its ``@``: it would be printed wherever the URL is."""
    return "://" in url and urlsplit(url).password is not None


class Settings(BaseSettings):
    """Process-wide configuration; defaults run fully offline on SQLite and local Chroma.

    Each field's ``description`` is the fix a user is told when its value is refused.
    """

    # NaN and infinities are refused as "not a finite number"; a bound's message ("at most 600") would mislead.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", allow_inf_nan=False)

    data_dir: Path = Field(
        Path(".culprit"), validate_default=True, description="a folder culprit can read and write (created if missing)"
    )
    database_url: str | None = Field(
        None, description="an SQLAlchemy URL such as postgresql+psycopg://user:password@host:5432/culprit"
    )
    chroma_url: str | None = Field(
        None, description="an http(s) URL such as http://127.0.0.1:8000, or nothing for the embedded store"
    )

    llm_base_url: str | None = Field(
        None, description="the http(s) URL of an OpenAI-compatible server, such as http://127.0.0.1:8000/v1"
    )
    llm_model: str | None = None
    llm_api_key: SecretStr = SecretStr("EMPTY")
    # Upper bounds: past them a value is a typo or an attack, and some would fail only later, far from
    # the setting (a window or retention of 10**9 days overflows the date arithmetic; an interval of
    # 10**12 s, the scheduler's; a batch of a million changes, the judge's prompt).
    llm_timeout_s: float = Field(20.0, gt=0, le=600, description="a number of seconds above 0, at most 600")

    window_days: int = Field(14, ge=1, le=365, description="a whole number of days from 1 to 365")
    # tools.rca.election keeps 5 finalists per round, so a batch must hold more to shrink the field.
    batch_size: int = Field(
        20, ge=6, le=100, description="a whole number of changes from 6 to 100 (each round keeps 5)"
    )
    # Unset (with target_precision unset too): the threshold is read off the model's held-out
    # precision curve for a precision of 0.9 (tools.rca.resources.gate_threshold).
    min_confidence: float | None = Field(None, ge=0, le=1, description="a confidence from 0 to 1, e.g. 0.5")
    # When set, replaces min_confidence: the threshold is read off the model's held-out precision curve.
    target_precision: float | None = Field(None, gt=0, le=1, description="a precision above 0 and at most 1, e.g. 0.9")
    ranker_path: Path | None = None

    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN"), description=SLACK_CREDENTIAL
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET"), description=SLACK_CREDENTIAL
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN"), description=SLACK_CREDENTIAL
    )
    slack_api_url: str | None = Field(
        None, description="the http(s) URL of the Slack Web API, such as https://slack.com/api/"
    )

    incident_channel_pattern: str = "inc-*"
    incident_channels: JsonList = Field([], description=CHANNEL_LIST)
    allowed_channels: JsonList = Field([], description=CHANNEL_LIST)
    allowed_users: JsonList = Field([], description='a JSON list of user ids, e.g. ["U0123"]')
    user_rate_limit_per_minute: int = Field(
        10, ge=1, le=10_000, description="a whole number of requests from 1 to 10000"
    )

    reports_token: SecretStr | None = Field(None, description=SHARED_SECRET)
    metrics_token: SecretStr | None = Field(None, description=SHARED_SECRET)
    reports_channel: str | None = None
    report_retention_days: int = Field(90, ge=1, le=3650, description=RETENTION)
    thread_retention_days: int = Field(30, ge=1, le=3650, description=RETENTION)
    alerts_channel: str | None = None
    digest_channel: str | None = None
    digest_timezone: str = Field("UTC", description='an IANA time zone such as "UTC" or "Europe/Paris"')
    digest_day_of_week: str = Field(
        "mon", description='a day such as "mon", or days as cron writes them ("mon-fri", "mon,thu")'
    )
    digest_hour: int = Field(9, ge=0, le=23, description="an hour of the day from 0 to 23")
    other_confidence: float = Field(0.4, ge=0, le=1, description="a confidence from 0 to 1, e.g. 0.4")

    repos: Annotated[list[TrackedRepo], NoDecode] = Field(
        [],
        description='a JSON list of repositories, e.g. [{"name":"acme/web","url":"https://github.com/acme/web.git",'
        '"branch":"main","token_env":"GITHUB_TOKEN"}] (url or path; the token stays in its own variable)',
    )
    poll_seconds: int = Field(60, ge=1, le=86_400, description="a whole number of seconds from 1 to 86400 (a day)")
    github_webhook_secret: SecretStr | None = Field(None, description=SHARED_SECRET)
    gitlab_webhook_token: SecretStr | None = Field(None, description=SHARED_SECRET)
    changes_token: SecretStr | None = Field(None, description=SHARED_SECRET)
    wiki_sources: Annotated[list[WikiSource], NoDecode] = Field(
        [],
        description='a JSON list of wiki sources, e.g. [{"kind":"confluence","name":"ops","url":"https://acme.atlassian.net/wiki",'
        '"space":"OPS","username":"bot@acme.com","token_env":"CONFLUENCE_TOKEN"},{"kind":"slack","name":"incidents",'
        '"path":"/exports/slack.zip"}]',
    )
    wiki_sync_minutes: int = Field(
        15, ge=1, le=10_080, description="a whole number of minutes from 1 to 10080 (a week)"
    )
    # Issue 13: who may confirm root causes, retraining, and incidents that start themselves.
    confirmers: JsonList = Field([], description='a JSON list of Slack user ids, e.g. ["U0123","W0456"]')
    ops_channel: str | None = None
    retrain_day_of_week: str = Field("sun", description='a day such as "sun", or days as cron writes them')
    retrain_hour: int = Field(3, ge=0, le=23, description="an hour of the day from 0 to 23")
    pagerduty_webhook_secret: SecretStr | None = Field(None, description=SHARED_SECRET)
    incidents_webhook_secret: SecretStr | None = Field(None, description=SHARED_SECRET)
    incident_post_channel: str | None = None

    @field_validator("min_confidence", "target_precision", "ranker_path", *HTTP_URLS, mode="before")
    @classmethod
    def _unset_when_empty(cls, value: Any) -> Any:
        # compose passes an unset variable as "" (``${CULPRIT_TARGET_PRECISION:-}``): that means "not set"
        return None if _empty(value) else value

    @field_validator(*SHARED_SECRETS, *SLACK_CREDENTIALS, mode="before")
    @classmethod
    def _usable_secret(cls, value: Any, info: ValidationInfo) -> Any:
        # The error names the variable and never the value (_explain echoes no secret).
        secret = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(secret, str):
            return value
        if not secret:  # compose's ${CULPRIT_REPORTS_TOKEN:-}: the feature is off
            return None
        if not secret.strip():
            raise ValueError("only whitespace")
        if info.field_name in SHARED_SECRETS and len(secret) < MIN_SECRET_CHARS:
            raise ValueError(f"shorter than {MIN_SECRET_CHARS} characters")
        return value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _default_when_empty(cls, value: Any) -> Any:
        # "" means unset here too: read as a path it would be the current folder, filled with culprit's files
        return cls.model_fields["data_dir"].default if _empty(value) else value

    @field_validator(*HTTP_URLS)
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return url
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (parsing the port is the check: "host:abc" raises here, not in a client later)
        except ValueError:
            raise ValueError("not a URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL with a host")
        return url

    @field_validator("data_dir")
    @classmethod
    def _usable_folder(cls, path: Path) -> Path:
        try:
            exists, is_dir = path.exists(), path.is_dir()
        except OSError as error:  # a name over 255 bytes, a path over 4,096
            raise ValueError(f"cannot be used as a folder ({error.strerror})") from None
        if exists and not is_dir:
            raise ValueError("this is a file, not a folder")
        if is_dir and not os.access(path, os.R_OK | os.W_OK | os.X_OK):
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

    @field_validator("repos")
    @classmethod
    def _distinct_repos(cls, repos: list[TrackedRepo]) -> list[TrackedRepo]:
        names = [repo.name for repo in repos]
        if len(set(names)) != len(names):
            raise ValueError("two repositories have the same name")
        return repos

    @field_validator(
        "incident_channels", "allowed_channels", "allowed_users", "confirmers", "repos", "wiki_sources", mode="before"
    )
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValueError("not JSON") from None
            except RecursionError:  # "[[[[..." thousands deep: the parser's stack, not a traceback
                raise ValueError("the JSON is nested too deeply") from None
        return value

    @field_validator("confirmers")
    @classmethod
    def _user_ids(cls, users: list[str]) -> list[str]:
        for user in users:
            if not _USER_ID.fullmatch(user):
                raise ValueError(f"{user[:40]!r} is not a Slack user id")
        return users

    @field_validator("digest_timezone")
    @classmethod
    def _time_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a folder; a long name too long a path
            raise ValueError("no such time zone") from None
        return name

    @field_validator("digest_day_of_week", "retrain_day_of_week")
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
    def mirrors_dir(self) -> Path:
        """Where the bare mirrors of ``repos`` live."""
        return self.data_dir / "mirrors"

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"


def masked_url(url: str) -> str:
    """``url`` fit to print or log: its password, if any, becomes ``***``."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def shown_url(url: str) -> str:
    """Any URL (http, git, a database's) fit to print or log: the password before its ``@``, if any, becomes ``***``.

    Unlike :func:`masked_url` it needs no SQLAlchemy and accepts a URL no client
    would (a bad port), which is exactly when an error quotes it; one that cannot
    even be split is not shown at all.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a URL that cannot be read, not shown)"
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{host}"))


def _variable(field: str) -> str:
    """The environment variable that sets ``field``."""
    alias = Settings.model_fields[field].validation_alias
    return str(alias.choices[0]) if isinstance(alias, AliasChoices) else ENV_PREFIX + field.upper()


def _explain(error: ErrorDetails) -> str:
    """One line: the variable and the value set (unless secret), what is wrong, and what to set instead."""
    by_variable = {_variable(name): name for name in Settings.model_fields}
    field = by_variable.get(str(error["loc"][0]), str(error["loc"][0]))  # an aliased field is reported by its alias
    info = Settings.model_fields[field]
    # Lists of sources are not echoed either: one item's URL may hold a password the check refuses.
    secret = field in ("database_url", "repos", "wiki_sources") or info.annotation is SecretStr or SecretStr in get_args(info.annotation)
    variable = _variable(field)
    value = os.environ.get(variable)
    if value is not None and field in HTTP_URLS:
        value = shown_url(value)
    if value is not None and len(value) > SHOWN_VALUE_CHARS:
        value = value[:SHOWN_VALUE_CHARS] + "..."
    given = "" if secret or value is None else f"={value}"
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
