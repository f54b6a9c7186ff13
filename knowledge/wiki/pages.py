"""Wiki pages as responders write them: Markdown or text with YAML front matter, cut at headings.

A chunk is one section with its title path ("Runbook: payments > Mitigation"),
small enough for MiniLM to read whole, and carries a content hash so a
re-ingest can tell which sections changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowledge.errors import InputError
from knowledge.plain_yaml import load_plain

PAGE_SUFFIXES = (".md", ".markdown", ".txt")
PAGE_KINDS = ("runbook", "postmortem", "service", "page")
MAX_CHUNK_CHARS = 1200
MAX_PAGE_BYTES = 2 * 1024 * 1024
"""A page over this is refused before it is read: a runbook is kilobytes, and a stray multi-GB file
would otherwise be read whole and embedded for hours. Applies to folder pages and source pages alike."""
HEADING_SEPARATOR = " > "

_HEADING = re.compile(r"^(#{1,6})\s+(.+)$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class WikiPage:
    """One page; ``path`` is relative to the wiki root with forward slashes."""

    path: str
    title: str
    kind: str
    services: tuple[str, ...]
    body: str
    front_matter: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefusedPage:
    """A page that could not be read this time, and why (the reason names the page and the fix).

    The page still exists, so the sections indexed from it before are kept, not deleted as vanished."""

    page: str
    reason: str


@dataclass
class PagesRead:
    """The pages of a folder or a source that could be read, and those refused one by one."""

    pages: list[WikiPage] = field(default_factory=list)
    refused: list[RefusedPage] = field(default_factory=list)


@dataclass(frozen=True)
class WikiChunk:
    """One section of a page, as stored in Chroma and scored by BM25."""

    chunk_id: str
    page: str
    title: str
    heading: str
    text: str
    kind: str
    services: tuple[str, ...]
    position: int

    @property
    def document(self) -> str:
        """What gets embedded and tokenised: the heading path gives a section its context."""
        return f"{self.heading}\n{self.text}"

    @property
    def content_hash(self) -> str:
        """Changes when the text or anything stored beside it changes."""
        payload = json.dumps([self.document, self.title, self.kind, list(self.services)])
        return hashlib.sha256(payload.encode()).hexdigest()

    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "page": self.page,
            "title": self.title,
            "heading": self.heading,
            "kind": self.kind,
            "position": self.position,
            "content_hash": self.content_hash,
        }
        if self.services:  # Chroma rejects empty lists; pages without services carry none
            metadata["services"] = list(self.services)
        return metadata


def find_pages(root: Path) -> list[Path]:
    """Every Markdown or text page under ``root``, skipping hidden folders, in a stable order."""
    if not root.is_dir():
        raise InputError(f"wiki directory {root} does not exist; pass the folder that holds the pages")
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and path.suffix.lower() in PAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def oversized_page(shown: str, size: int) -> str | None:
    """Why a page of ``size`` bytes is refused, or None when it fits under ``MAX_PAGE_BYTES``."""
    if size <= MAX_PAGE_BYTES:
        return None
    limit = f"{MAX_PAGE_BYTES / 1048576:g} MiB" if MAX_PAGE_BYTES >= 1048576 else f"{MAX_PAGE_BYTES:,} bytes"
    return f"{shown} is over the {limit} page size limit (MAX_PAGE_BYTES); split it into smaller pages"


def read_page_text(path: Path, shown: str) -> str:
    """A page file's text, its size checked before it is read (``stat``, then at most one byte over the
    limit, since a file can grow or a special file report no size); a page that is too large, not UTF-8
    or cannot be opened is an ``InputError`` naming ``shown``."""
    try:
        too_large = oversized_page(shown, path.stat().st_size)
        if too_large is None:
            with path.open("rb") as file:
                raw = file.read(MAX_PAGE_BYTES + 1)
            too_large = oversized_page(shown, len(raw))
    except OSError as error:
        raise InputError(f"{shown} could not be read ({error.strerror or error}); check the file") from None
    if too_large:
        raise InputError(too_large)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{shown} is not UTF-8 text ({error.reason}); save it as UTF-8") from None


def read_page(root: Path, path: Path) -> WikiPage:
    """Parse one page; bad front matter is the author's to fix, so the error names the file."""
    relative = path.relative_to(root).as_posix()
    raw = read_page_text(path, relative)
    front_matter, body = _split_front_matter(raw, relative)
    kind = str(front_matter.get("type") or _kind_from_path(relative)).lower()
    if kind not in PAGE_KINDS:
        raise InputError(f"{relative}: front matter type {kind!r} is not one of {', '.join(PAGE_KINDS)}")
    return WikiPage(
        path=relative,
        title=str(front_matter.get("title") or _first_h1(body) or _title_from_path(path)),
        kind=kind,
        services=_services(front_matter, relative),
        body=body,
        front_matter=front_matter,
    )


def split_into_chunks(page: WikiPage) -> list[WikiChunk]:
    """One chunk per section (long sections cut at paragraphs), each with its heading path."""
    chunks: list[WikiChunk] = []
    seen: Counter[str] = Counter()
    for heading_path, text in _sections(page):
        for piece in _pieces(text):
            heading = HEADING_SEPARATOR.join(heading_path)
            seen[heading] += 1
            chunks.append(
                WikiChunk(
                    chunk_id=f"{page.path}#{heading}#{seen[heading]}",
                    page=page.path,
                    title=page.title,
                    heading=heading,
                    text=piece,
                    kind=page.kind,
                    services=page.services,
                    position=len(chunks),
                )
            )
    return chunks


def _split_front_matter(raw: str, relative: str) -> tuple[dict[str, Any], str]:
    lines = raw.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, raw
    for end, line in enumerate(lines[1:], start=1):
        if line.strip() in ("---", "..."):
            break
    else:
        raise InputError(f"{relative}: front matter opened with '---' is never closed; add a '---' line")
    try:
        front_matter = load_plain("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as error:
        raise InputError(f"{relative}: front matter is not valid YAML ({error})") from error
    if not isinstance(front_matter, dict):
        raise InputError(f"{relative}: front matter must be a mapping of keys such as title and type")
    return front_matter, "\n".join(lines[end + 1 :])


def _kind_from_path(relative: str) -> str:
    lowered = relative.lower()
    if "postmortem" in lowered or "post-mortem" in lowered:
        return "postmortem"
    if "runbook" in lowered:
        return "runbook"
    if lowered.startswith("services/"):
        return "service"
    return "page"


def _services(front_matter: dict[str, Any], relative: str) -> tuple[str, ...]:
    declared = front_matter.get("services", front_matter.get("service"))
    if isinstance(declared, str):
        declared = [declared]
    if declared and not isinstance(declared, list):
        raise InputError(f"{relative}: front matter services must be a name or a list of names, such as [payments]")
    if declared:
        return tuple(sorted({str(name).strip() for name in declared if str(name).strip()}))
    parts = relative.split("/")
    if len(parts) > 2 and parts[0] == "services":
        return (parts[1],)
    return ()


def _heading(line: str) -> tuple[int, str] | None:
    """(level, name) of an ATX heading line, its closing ``#``s and spaces dropped. Done in Python: as a
    regex (``(.+?)\\s*#*\\s*$``) it was cubic in a heading's inner spaces, 10 s for 2,000 of them."""
    match = _HEADING.match(line)
    if match is None:
        return None
    text = match.group(2)
    return len(match.group(1)), text.rstrip().rstrip("#").rstrip() or text[:1]


def _first_h1(body: str) -> str | None:
    for line in body.splitlines():
        heading = _heading(line)
        if heading and heading[0] == 1:
            return heading[1]
    return None


def _title_from_path(path: Path) -> str:
    return path.stem.replace("-", " ").replace("_", " ").strip().capitalize()


def _sections(page: WikiPage) -> list[tuple[list[str], str]]:
    """(heading path, text) per section; the page title heads the path, H1 equal to it is not repeated."""
    sections: list[tuple[list[str], str]] = []
    stack: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False

    def close() -> None:
        text = "\n".join(lines).strip()
        if text:
            sections.append(([page.title, *(name for _, name in stack)], text))
        lines.clear()

    for line in page.body.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _heading(line)
        if heading is None:
            lines.append(line)
            continue
        close()
        level, name = heading
        while stack and stack[-1][0] >= level:
            stack.pop()
        if not (level == 1 and name == page.title):
            stack.append((level, name))
    close()
    return sections


def _pieces(text: str) -> list[str]:
    """Cut a long section at blank lines so no piece outgrows what the model reads."""
    if len(text) <= MAX_CHUNK_CHARS:
        return [text]
    pieces: list[str] = []
    current = ""
    for paragraph in re.split(r"\n\s*\n", text):
        if current and len(current) + len(paragraph) + 2 > MAX_CHUNK_CHARS:
            pieces.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        pieces.append(current)
    return pieces
