"""langchain-community's wiki loaders, taught to refuse one page instead of failing the whole source.

Imported only when a source syncs: langchain-community is slow to import.
"""

from __future__ import annotations

import fnmatch
import json
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from atlassian.errors import ApiError
from langchain_community.document_loaders import ConfluenceLoader, SlackDirectoryLoader
from langchain_community.document_loaders.confluence import ContentFormat
from langchain_core.documents import Document
from requests import PreparedRequest, RequestException, Response
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from knowledge.errors import mask_url
from knowledge.wiki.pages import oversized_page

REFUSED = "refused"
"""Metadata key of a Confluence document standing for a refused page: its value is the reason."""

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
"""Most bytes one Confluence answer may carry (decompressed): a page under ``MAX_PAGE_BYTES`` fits in one
even with JSON's escaping, and a server answering without end is cut off there instead of filling memory."""


MAX_ANSWER_SECONDS = 120.0
"""Longest one Confluence answer may take to arrive, its headers and its body: requests' timeout is per
socket read, so a server sending a byte a minute would otherwise hold a sync for hours. At the deadline the
connection is shut down, whatever read it is waiting in."""

MAX_SYNC_SECONDS = 600.0
"""How long into a sync pages may still be asked for one by one (after a listing that failed): past it the
pages left are refused without asking, so a server stalling every page costs one sync minutes, not a page
count of ``MAX_ANSWER_SECONDS``, and the scheduler's next tick (the other sources') is not held up."""


def confluence_message(error: BaseException, token: str | None) -> str:
    """The atlassian library's message for a failed answer, without ``token`` (the API token) or any URL's
    user and password: its message is the server's own, and a server or a proxy in front of it can quote
    either (the upstream URL it was given, the credentials it refused)."""
    return mask_url(str(error).replace(token, "***") if token else str(error))


class ConfluenceAnswerTooLarge(Exception):
    """A Confluence answer went past ``MAX_RESPONSE_BYTES``; nothing of it was parsed."""


class ConfluenceAnswerTooSlow(Exception):
    """A Confluence answer took longer than ``MAX_ANSWER_SECONDS``; nothing of it was parsed."""


class _AnswerDeadline(threading.local):
    """The deadline of the Confluence answer this thread is waiting for, and the timer that shuts its
    connection down when it passes (a socket timeout bounds one read, not the header lines)."""

    def __init__(self) -> None:
        self.at = 0.0
        self.timer: threading.Timer | None = None

    def start(self) -> None:
        self.at = time.monotonic() + MAX_ANSWER_SECONDS

    def hang_up_when_passed(self, connection: socket.socket) -> None:
        self.timer = threading.Timer(max(0.0, self.at - time.monotonic()), _shut_down, (connection,))
        self.timer.daemon = True
        self.timer.start()

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def stop(self) -> None:
        if self.timer:
            self.timer.cancel()
            self.timer = None


_deadline = _AnswerDeadline()


def _shut_down(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)  # the waiting read returns at once; urllib3 then drops it
    except OSError:  # already closed
        pass


class _HangsUpAtDeadline:
    """A urllib3 connection whose wait for an answer ends at this thread's answer deadline."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        if self.sock is not None:
            _deadline.hang_up_when_passed(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _DeadlineConnection(_HangsUpAtDeadline, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_HangsUpAtDeadline, HTTPSConnection):
    pass


class _DeadlinePool(HTTPConnectionPool):
    ConnectionCls = _DeadlineConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_DEADLINE_POOLS = {"http": _DeadlinePool, "https": _DeadlineHTTPSPool}


class _CappedAdapter(HTTPAdapter):
    """Reads each answer in chunks as they arrive and stops one chunk past ``MAX_RESPONSE_BYTES`` (requests
    would read it whole, then the JSON parser would hold it twice); an answer whose headers and body are
    not in by ``MAX_ANSWER_SECONDS`` has its connection shut down and nothing of it parsed."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _DEADLINE_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # a SOCKS proxy's pools are its own; only their body is bounded
            manager.pool_classes_by_scheme = _DEADLINE_POOLS
        return manager

    def send(self, request: PreparedRequest, stream: bool = False, **kwargs: Any) -> Response:  # type: ignore[override]
        path = (request.path_url or "").split("?")[0]
        too_slow = ConfluenceAnswerTooSlow(
            f"Confluence took over {MAX_ANSWER_SECONDS:g} s to answer {path} (MAX_ANSWER_SECONDS); "
            "check the server or the network between it and culprit"
        )
        _deadline.start()
        try:
            response = super().send(request, stream=True, **kwargs)
            body = _capped_body(response, path)
        except ConfluenceAnswerTooLarge:
            raise
        except Exception:  # the connection shut down at the deadline fails in whatever read it was in
            if _deadline.passed():
                raise too_slow from None
            raise
        finally:
            _deadline.stop()
        if _deadline.passed():  # what arrived may be cut short
            response.close()
            raise too_slow
        response._content = body  # what requests' own read would have set
        return response


def _capped_body(response: Response, path: str) -> bytes:
    body, size = [], 0
    while chunk := response.raw.read1(64 * 1024, decode_content=True):  # what one socket read brought
        body.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            response.close()
            raise ConfluenceAnswerTooLarge(
                f"Confluence answered {path} with over {MAX_RESPONSE_BYTES:,} bytes (MAX_RESPONSE_BYTES)"
            )
    return b"".join(body)


def _listed(answer: Any, limit: int) -> list[dict[str, Any]]:
    """The pages of one listing answer, at most ``limit`` (atlassian's own loop asks again while a server
    answers more, without end); an answer that is not a list of pages with an id and title fails the source."""
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list) or not all(
        isinstance(page, dict) and isinstance(page.get("id"), str) and isinstance(page.get("title"), str)
        for page in results
    ):
        raise ValueError("Confluence's page listing is not a list of pages with an id and a title")
    return results[:limit]


class CappedConfluenceLoader(ConfluenceLoader):
    """Caps every Confluence answer at ``MAX_RESPONSE_BYTES`` and ``MAX_ANSWER_SECONDS`` and refuses a page
    whose body is over the page size limit before converting it to Markdown. A listing too large, too slow
    or failing is listed again without bodies and its pages fetched one by one, so only the page that is
    too large, too slow or failing is refused. A refused page comes back as an empty document whose
    metadata carries ``REFUSED``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token: str | None = kwargs.get("api_key") or kwargs.get("token")  # masked in a refused page's reason
        self.one_by_one_until = time.monotonic() + MAX_SYNC_SECONDS
        # atlassian sleeps as long as a 429's Retry-After says (an hour, a year) and asks again without end;
        # a rate-limited answer fails like any other HTTP error, and the next sync asks again.
        self.confluence.retry_with_header = False
        adapter = _CappedAdapter()
        for scheme in ("http://", "https://"):
            self.confluence._session.mount(scheme, adapter)  # atlassian's session, this loader's own

    def paginate_request(self, retrieval_method: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        """A space's pages, one listing answer at a time (``kwargs`` as langchain passes them for a space),
        each page once, until an answer brings no page not seen yet. A generator, so langchain converts each
        answer's pages before the next is asked for: one answer's bodies are held at a time, not the space's."""
        max_pages, limit = kwargs.pop("max_pages"), kwargs.pop("limit")
        seen: set[str] = set()
        while len(seen) < max_pages:
            try:
                answer = self.confluence.get_all_pages_from_space_raw(start=len(seen), limit=limit, **kwargs)
                batch = _listed(answer, limit)
            except (ConfluenceAnswerTooLarge, ConfluenceAnswerTooSlow, RequestException):  # maybe one page's doing
                batch = self._one_by_one(start=len(seen), limit=limit, **kwargs)
            fresh = list({page["id"]: page for page in batch if page["id"] not in seen}.values())
            if not fresh:  # a server ignoring `start` repeats itself
                return
            fresh = fresh[: max_pages - len(seen)]
            seen.update(page["id"] for page in fresh)
            yield from fresh

    def _one_by_one(self, start: int, limit: int, expand: str, **kwargs: Any) -> list[dict[str, Any]]:
        """The pages of a listing that could not be read (too large, too slow, failed): listed again with
        versions only, then fetched one by one, each with the id and title it was listed with; a page whose
        own answer is too large, too slow or fails, or that is not asked because the sync has run for
        ``MAX_SYNC_SECONDS``, stands as ``{id, title, REFUSED: reason}``."""
        listed = _listed(self.confluence.get_all_pages_from_space_raw(
            start=start, limit=limit, expand="version", **kwargs), limit)  # fmt: skip
        pages = []
        for page in listed:
            try:
                if time.monotonic() > self.one_by_one_until:
                    raise ConfluenceAnswerTooSlow(
                        f"not asked: this sync has run for over {MAX_SYNC_SECONDS:g} s (MAX_SYNC_SECONDS); "
                        "it is asked again at the next sync"
                    )
                fetched = self.confluence.get_page_by_id(page["id"], expand=expand)
                pages.append(fetched if isinstance(fetched, dict) else {})
            except (ConfluenceAnswerTooLarge, ConfluenceAnswerTooSlow) as error:
                pages.append({REFUSED: str(error)})
            except (RequestException, ApiError) as error:  # an HTTP error, a connection reset: this page only
                pages.append({REFUSED: f"Confluence failed to give it ({type(error).__name__}: {confluence_message(error, self.token)[:200]})"})
            pages[-1].update(id=page["id"], title=page["title"])  # as listed: its refusal can name it
        return pages

    def process_page(  # type: ignore[override]  # langchain's signature, extra arguments passed on
        self, page: dict[str, Any], include_attachments: bool, include_comments: bool, include_labels: bool,
        content_format: ContentFormat, *args: Any, **kwargs: Any,
    ) -> Document:  # fmt: skip
        try:
            reason = page.get(REFUSED) or oversized_page("its body", len(content_format.get_content(page).encode()))
            if not reason:
                return super().process_page(
                    page, include_attachments, include_comments, include_labels, content_format, *args, **kwargs
                )
        except (KeyError, TypeError, AttributeError) as error:  # a field missing or of another type
            reason = f"Confluence gave it without a readable {error} ({type(error).__name__}); check the page"
        return Document(page_content="", metadata={"id": page["id"], "title": page["title"], REFUSED: reason})


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
