"""Storing the ownership rules of one file in place of its previous rules."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from knowledge.attribution import reattribute
from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.ingest.report import LoadReport
from knowledge.ownership import OwnershipRule, compile_pattern, replace_rules


# A CODEOWNERS, MAINTAINERS or catalog file is read whole: the kernel's MAINTAINERS, the largest
# known, is under 1 MB, so a bigger one is a mistake (or an attack on memory), refused before reading.
MAX_FILE_BYTES = 10 << 20
# Owners and sections are stored in columns of 200 and 300 characters; a pattern is a path.
MAX_NAME_CHARS = 200
MAX_PATTERN_CHARS = 4096


def read_text(path: Path) -> str:
    if not path.exists():
        raise InputError(f"file not found: {path}")
    if path.is_dir():
        raise InputError(f"expected a file but {path} is a directory")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path} is {size:,} bytes, over {MAX_FILE_BYTES:,}; give the ownership, catalog or categories file itself")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {path}: {error}") from error


def check_name(name: str, what: str, where: str) -> None:
    """Refuse an owner, subsystem or component name with its line: a NUL no database stores, or a
    name longer than the column that holds it."""
    if "\x00" in name:
        raise InputError(f"{where}: the {what} holds a NUL character; remove it")
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"{where}: the {what} {name[:40]!r}... is over {MAX_NAME_CHARS} characters; shorten it")


def check_pattern(pattern: str, where: str) -> None:
    """Reject a pattern now, with its line, rather than when the retriever compiles it (or a database
    refuses its NUL)."""
    if "\x00" in pattern:
        raise InputError(f"{where}: the path pattern holds a NUL character; remove it")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InputError(f"{where}: the path pattern is over {MAX_PATTERN_CHARS} characters; shorten it")
    try:
        compile_pattern(pattern)
    except ValueError as error:
        raise InputError(f"{where}: {error}") from None


def store_rules(url: str, source: str, rules: list[OwnershipRule], kind: str) -> LoadReport:
    """Replace every rule of ``source``; rules identical to stored ones count as already present."""
    def key(rule: OwnershipRule) -> tuple[int, str, tuple[str, ...], str]:
        return (rule.position, rule.pattern, tuple(rule.owners), rule.section)

    with session_scope(url) as session:
        before = {
            key(rule)
            for rule in session.scalars(select(OwnershipRule).where(OwnershipRule.source == source))
        }
        replace_rules(session, source, rules)
    present = sum(1 for rule in rules if key(rule) in before)
    if present != len(rules) or len(before) != len(rules):
        reattribute(url)  # owners map paths to services: stored changes follow the new rules
    return LoadReport(kind=kind, source=source, new=len(rules) - present, already_present=present)
