"""langchain-community's wiki loaders, taught to refuse one page instead of failing the whole source.

Imported only when a source syncs: langchain-community is slow to import.
"""

from __future__ import annotations

import fnmatch
import json
import zipfile
from pathlib import Path
from typing import Any

from langchain_community.document_loaders import ConfluenceLoader, SlackDirectoryLoader
from langchain_community.document_loaders.confluence import ContentFormat
from langchain_core.documents import Document

from knowledge.wiki.pages import oversized_page

REFUSED = "refused"
"""Metadata key of a Confluence document standing for a refused page: its value is the reason."""


class CappedConfluenceLoader(ConfluenceLoader):
    """Refuses a page whose body is over the page size limit before converting it to Markdown; the
    refused page comes back as an empty document whose metadata carries ``REFUSED``."""

    def process_page(  # type: ignore[override]  # langchain's signature, extra arguments passed on
        self, page: dict[str, Any], include_attachments: bool, include_comments: bool, include_labels: bool,
        content_format: ContentFormat, *args: Any, **kwargs: Any,
    ) -> Document:  # fmt: skip
        body = content_format.get_content(page)
        too_large = oversized_page("its body", len(body.encode()))
        if too_large:
            return Document(page_content="", metadata={"id": page["id"], "title": page["title"], REFUSED: too_large})
        return super().process_page(
            page, include_attachments, include_comments, include_labels, content_format, *args, **kwargs
        )


class CheckedSlackLoader(SlackDirectoryLoader):
    """Reads only the day files of incident channels; a day file over the page size limit or not a JSON
    list of messages refuses its channel (``refused``: channel -> reason) and the other channels still load."""

    def __init__(self, zip_path: Path, incident_channel_pattern: str) -> None:
        super().__init__(zip_path)
        self.incident_channel_pattern = incident_channel_pattern
        self.refused: dict[str, str] = {}

    def _read_json(self, zip_file: zipfile.ZipFile, file_path: str) -> list[dict[str, Any]]:
        channel = Path(file_path).parent.name
        if channel in self.refused or not fnmatch.fnmatch(channel, self.incident_channel_pattern):
            return []
        too_large = oversized_page(file_path, zip_file.getinfo(file_path).file_size)  # zipfile stops reading there
        if too_large:
            self.refused[channel] = too_large
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
