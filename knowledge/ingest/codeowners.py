"""Ownership rules from a CODEOWNERS file (GitHub syntax, GitLab ``[Section]`` headers).

Later lines win within a section; a pattern with no owners unsets ownership
(or takes the section's default owners, as GitLab does).
"""

from __future__ import annotations

import re
from pathlib import Path

from knowledge.errors import InputError
from knowledge.ingest.report import LoadReport
from knowledge.ingest.rules import check_name, check_pattern, read_text, store_rules
from knowledge.ownership import OwnershipRule

_SECTION = re.compile(r"^\^?\[(?P<name>[^\]]+)\](?:\[\d+\])?\s*(?P<owners>.*)$")
_TOKEN = re.compile(r"(?:\\.|\S)+")


def _owners(tokens: list[str]) -> list[str]:
    """Owner tokens up to an inline ``#`` comment."""
    owners: list[str] = []
    for token in tokens:
        if token.startswith("#"):
            break
        owners.append(token)
    return owners


def parse_codeowners(text: str, source: str) -> list[OwnershipRule]:
    """Rules in file order; a negated pattern (unsupported by CODEOWNERS) is an error with its line."""
    rules: list[OwnershipRule] = []
    section, section_owners = "", []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if header := _SECTION.match(line):
            section = header["name"].strip()
            section_owners = _owners(_TOKEN.findall(header["owners"]))
            for name in [section, *section_owners]:
                check_name(name, "section or owner name", f"{source}:{line_no}")
            continue
        pattern, *rest = _TOKEN.findall(line)
        where = f"{source}:{line_no}"
        if pattern.startswith("!"):
            raise InputError(f"{where}: CODEOWNERS does not support negated patterns ({pattern}); remove the line")
        check_pattern(pattern, where)
        for owner in _owners(rest):
            check_name(owner, "owner name", where)
        owners = _owners(rest) or (section_owners if section else [])
        rules.append(
            OwnershipRule(source=source, position=len(rules), pattern=pattern, owners=owners, section=section)
        )
    return rules


def ingest_codeowners(path: Path, url: str) -> LoadReport:
    source = str(path.resolve())
    return store_rules(url, source, parse_codeowners(read_text(path), source), kind="ownership rules")
