"""Ownership rules from a Linux-style MAINTAINERS file.

Each entry is a block: the subsystem name, then tagged lines (``M:`` maintainer,
``F:`` files, ``X:`` excluded files, ...). Its owners are the subsystem and its
maintainers. Every entry that covers a path owns it, so each entry is its own
section; its ``X:`` patterns follow its ``F:`` patterns with no owners, which
unsets them within that entry only.
"""

from __future__ import annotations

import re
from pathlib import Path

from knowledge.errors import InputError
from knowledge.ingest.progress import Progress, Silent
from knowledge.ingest.report import LoadReport
from knowledge.ingest.rules import check_name, check_pattern, read_text, store_rules
from knowledge.ownership import OwnershipRule

# Lines arrive right-stripped (``_blocks``), so the value runs to the end: a lazy ``.*?\s*$`` tried the
# end at every character, quadratic in a line's spaces (hours for one line of a 10 MiB file).
_TAG = re.compile(r"^(?P<tag>[A-Z]):\s*(?P<value>.*)$")


def _person(value: str) -> str:
    """``Jane Doe <jane@example.org>`` -> ``Jane Doe``; a bare address stays as it is."""
    name = value.split("<", 1)[0].strip().strip('"')
    return name or value.strip("<> ")


def _anchored(pattern: str) -> str:
    """MAINTAINERS paths start at the repository root; a trailing ``/`` covers everything under it."""
    return "/" + pattern.lstrip("/")


def _blocks(text: str) -> list[list[tuple[int, str]]]:
    blocks: list[list[tuple[int, str]]] = [[]]
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            blocks[-1].append((line_no, line.rstrip()))
        elif blocks[-1]:
            blocks.append([])
    return [block for block in blocks if block]


def parse_maintainers(text: str, source: str, progress: Progress | None = None) -> list[OwnershipRule]:
    """Rules for every entry with ``F:`` lines; blocks without tags (the preamble) are prose."""
    progress = progress or Silent()
    blocks = _blocks(text)
    progress.start(f"reading {Path(source).name}", total=len(blocks))
    rules: list[OwnershipRule] = []
    for block in blocks:
        progress.advance()
        tagged = [(line_no, match) for line_no, line in block if (match := _TAG.match(line))]
        if not tagged:
            continue
        first_line_no, first_line = block[0]
        if _TAG.match(first_line):
            raise InputError(
                f"{source}:{first_line_no}: an entry must start with its subsystem name; "
                "add the name line above the tags"
            )
        subsystem = first_line.strip()
        check_name(subsystem, "subsystem name", f"{source}:{first_line_no}")
        owners = [subsystem]
        for line_no, match in tagged:
            if match["tag"] == "M":
                owners.append(_person(match["value"]))
                check_name(owners[-1], "maintainer name", f"{source}:{line_no}")
        for tag, rule_owners in (("F", owners), ("X", [])):
            for line_no, match in tagged:
                if match["tag"] != tag or not match["value"]:
                    continue
                pattern = _anchored(match["value"])
                check_pattern(pattern, f"{source}:{line_no}")
                rules.append(
                    OwnershipRule(
                        source=source, position=len(rules), pattern=pattern,
                        owners=list(rule_owners), section=subsystem,
                    )
                )  # fmt: skip
    return rules


def ingest_maintainers(path: Path, url: str, progress: Progress | None = None) -> LoadReport:
    """A kernel-sized file holds ~25,000 patterns, hence the progress."""
    source = str(path.resolve())
    rules = parse_maintainers(read_text(path), source, progress)
    return store_rules(url, source, rules, kind="ownership rules")
