"""Slack checks: the token works, it holds the scopes the enabled features need, the bot is in its channels.

Slack returns the token's scopes in the ``x-oauth-scopes`` header of every Web
API answer, ``auth.test`` included, so one call tells both. ``manifest.yml``
asks for exactly the union of :data:`FEATURE_SCOPES` (``tests/bot/test_doctor.py``
holds the two together, and docs/slack.md lists them).
"""

from __future__ import annotations

from http.client import HTTPException

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.doctor import CheckResult, DoctorOptions, failed, passed, skipped
from knowledge.config import Settings, shown_url
from knowledge.errors import masked_error

# Each feature and the bot scopes it needs; "always" features are on whenever Slack is configured.
FEATURE_SCOPES: dict[str, tuple[str, ...]] = {
    "/rca": ("commands", "chat:write"),
    "mentions in incident channels": ("app_mentions:read", "chat:write", "channels:read", "groups:read"),
    "bug reports from the feedback channel": ("channels:history", "groups:history"),
    "weekly digest": ("chat:write", "files:write"),
    "spike alerts": ("chat:write",),
    "investigations that start themselves in new incident channels": ("channels:join", "channels:read", "chat:write"),
}
REINSTALL = "add the scopes in manifest.yml to the app (OAuth & Permissions) and reinstall it to the workspace"
TOKEN_FIX = "set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-..., OAuth & Permissions)"


def enabled_features(settings: Settings) -> list[str]:
    """The features these settings switch on: /rca and mentions always, the others by their channel."""
    optional = {
        "bug reports from the feedback channel": settings.reports_channel,
        "weekly digest": settings.digest_channel,
        "spike alerts": settings.alerts_channel,
    }
    return [feature for feature in FEATURE_SCOPES if optional.get(feature, True)]


def doctor_client(settings: Settings) -> WebClient:
    """A Web API client without retries: a doctor reports a failure at once rather than wait it out."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    base_url = settings.slack_api_url.rstrip("/") + "/" if settings.slack_api_url else WebClient.BASE_URL
    return WebClient(token=token, base_url=base_url, timeout=10)


def check_slack(settings: Settings, options: DoctorOptions) -> list[CheckResult]:
    """``auth.test``, the scopes each enabled feature needs, and membership of the configured channels."""
    if not settings.slack_bot_token:
        return [skipped("slack", "SLACK_BOT_TOKEN is not set (Slack is off; the terminal commands work without it)")]
    client = doctor_client(settings)
    try:
        answer = client.auth_test()
    except SlackApiError as error:
        reason = error.response.get("error")
        return [failed("slack", f"Slack refused the token ({reason})", TOKEN_FIX)]
    except (SlackClientError, OSError, HTTPException) as error:  # InvalidURL quotes a URL's password as its port
        reason = masked_error(error, 200, client.base_url)
        return [failed("slack", f"cannot reach Slack at {shown_url(client.base_url)} ({reason})", "check the network or CULPRIT_SLACK_API_URL")]
    headers = {name.lower(): value for name, value in (answer.headers or {}).items()}
    granted = {scope.strip() for scope in _header(headers.get("x-oauth-scopes")).split(",") if scope.strip()}
    results = [passed("slack", f"signed in as {answer.get('user')} in {answer.get('team')}")]
    results.extend(_scope_lines(settings, granted))
    results.extend(_channel_lines(settings, client))
    return results


def _header(value: object) -> str:
    return ",".join(value) if isinstance(value, list) else str(value or "")


def _scope_lines(settings: Settings, granted: set[str]) -> list[CheckResult]:
    lines = []
    for feature in enabled_features(settings):
        missing = [scope for scope in FEATURE_SCOPES[feature] if scope not in granted]
        name = f"slack scopes: {feature}"
        if missing:
            lines.append(failed(name, f"the token lacks {', '.join(missing)}", REINSTALL))
        else:
            lines.append(passed(name, ", ".join(FEATURE_SCOPES[feature])))
    return lines


def _channel_lines(settings: Settings, client: WebClient) -> list[CheckResult]:
    """The bot must be a member to post the digest and alerts and to read the feedback channel."""
    configured = {
        "alerts": ("CULPRIT_ALERTS_CHANNEL", settings.alerts_channel),
        "digest": ("CULPRIT_DIGEST_CHANNEL", settings.digest_channel),
        "reports": ("CULPRIT_REPORTS_CHANNEL", settings.reports_channel),
    }
    lines = []
    for purpose, (variable, channel) in configured.items():
        name = f"slack channel: {purpose}"
        if not channel:
            lines.append(skipped(name, f"{variable} is not set"))
            continue
        invite = f"invite the bot: `/invite @culprit` in that channel, or set {variable} to its id"
        try:
            info = client.conversations_info(channel=channel.lstrip("#"))
        except SlackApiError as error:
            reason = error.response.get("error")
            lines.append(failed(name, f"{channel}: {reason} (a private channel the bot is not in looks missing)", invite))
            continue
        found = info.get("channel") or {}
        if not found.get("is_member"):
            lines.append(failed(name, f"the bot is not a member of #{found.get('name', channel)}", invite))
        else:
            lines.append(passed(name, f"member of #{found.get('name', channel)}"))
    return lines
