"""Channel names, looked up once: events carry only ids, configuration speaks names.

Settings may list channels by id (``C0123``) or by name (``inc-checkout``);
both are accepted everywhere a channel is configured.
"""

from __future__ import annotations

import threading
from fnmatch import fnmatchcase

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from knowledge.config import Settings

log = structlog.get_logger(__name__)


class ChannelDirectory:
    """Id -> name through ``conversations.info``, cached for the life of the process."""

    def __init__(self, client: WebClient) -> None:
        self._client = client
        self._names: dict[str, str] = {}
        self._creators: dict[str, str] = {}
        self._lock = threading.Lock()

    def remember(self, channel_id: str, name: str | None) -> None:
        """Slash commands carry the name already; keep it and save a lookup."""
        if name:
            with self._lock:
                self._names[channel_id] = name

    def name(self, channel_id: str) -> str | None:
        with self._lock:
            if channel_id in self._names:
                return self._names[channel_id]
        try:
            response = self._client.conversations_info(channel=channel_id)
        except SlackApiError as error:
            log.warning("channel lookup failed", channel=channel_id, error=error.response.get("error"))
            return None
        info = response.get("channel") or {}
        self.remember(channel_id, info.get("name"))
        if info.get("creator"):
            with self._lock:
                self._creators[channel_id] = info["creator"]
        return info.get("name")

    def creator(self, channel_id: str) -> str | None:
        """Who created the channel (for an incident channel, its commander), as ``conversations.info`` says."""
        with self._lock:
            if channel_id in self._creators:
                return self._creators[channel_id]
            self._names.pop(channel_id, None)  # the cached name came without a creator: ask Slack once
        self.name(channel_id)
        with self._lock:
            return self._creators.get(channel_id)

    def listed(self, channel_id: str, configured: list[str]) -> bool:
        """Whether the channel appears in a configured list, by id or by name."""
        if channel_id in configured:
            return True
        names = [entry.lstrip("#") for entry in configured if not _looks_like_id(entry)]
        return bool(names) and self.name(channel_id) in names

    def is_incident_channel(self, channel_id: str, settings: Settings) -> bool:
        """Listed in ``incident_channels`` or named like ``incident_channel_pattern`` (``inc-*``).

        A request that names no channel (``""``) is in none: no lookup is spent on it.
        """
        if not channel_id:
            return False
        if self.listed(channel_id, settings.incident_channels):
            return True
        name = self.name(channel_id)
        return name is not None and fnmatchcase(name, settings.incident_channel_pattern)


def _looks_like_id(entry: str) -> bool:
    return entry[:1] in {"C", "G", "D"} and entry.isupper() and entry.isalnum()
