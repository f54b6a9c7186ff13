"""langchain-community's wiki loaders, taught to refuse one page instead of failing the whole source.

Imported only when a source syncs: langchain-community is slow to import.
"""

from __future__ import annotations

import fnmatch
import json
import zipfile
from pathlib import Path
from typing import Any

from langchain_community.document_loaders import SlackDirectoryLoader


class CheckedSlackLoader(SlackDirectoryLoader):
    """Reads only the day files of incident channels; a day file that is not a JSON list of messages
    refuses its channel (``refused``: channel -> reason) and the other channels still load."""

    def __init__(self, zip_path: Path, incident_channel_pattern: str) -> None:
        super().__init__(zip_path)
        self.incident_channel_pattern = incident_channel_pattern
        self.refused: dict[str, str] = {}

    def _read_json(self, zip_file: zipfile.ZipFile, file_path: str) -> list[dict[str, Any]]:
        channel = Path(file_path).parent.name
        if channel in self.refused or not fnmatch.fnmatch(channel, self.incident_channel_pattern):
            return []
        try:
            with zip_file.open(file_path) as member:
                messages = json.load(member)
        except (ValueError, RecursionError, RuntimeError, OSError, zipfile.BadZipFile) as error:
            reason = "nested too deeply" if isinstance(error, RecursionError) else type(error).__name__
            self.refused[channel] = f"{file_path} is not readable JSON ({reason}); export the channel again"
            return []
        if not isinstance(messages, list) or not all(
            isinstance(message, dict) and isinstance(message.get("text", ""), str) for message in messages
        ):
            self.refused[channel] = f"{file_path} is not a list of Slack messages with text; export the channel again"
            return []
        return messages
