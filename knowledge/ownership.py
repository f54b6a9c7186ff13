"""Path ownership rules from CODEOWNERS or MAINTAINERS files."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import re2
from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern
from sqlalchemy import JSON, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from knowledge.db import Base


class OwnershipRule(Base):
    """One path pattern and the owners it names; later rules win, as in CODEOWNERS."""

    __tablename__ = "ownership_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(500), index=True)
    position: Mapped[int] = mapped_column(Integer)
    pattern: Mapped[str] = mapped_column(Text)
    owners: Mapped[list[str]] = mapped_column(JSON, default=list)
    section: Mapped[str] = mapped_column(String(300), default="")


def replace_rules(session: Session, source: str, rules: list[OwnershipRule]) -> None:
    """Swap every rule of one source file for a new set, so re-ingesting is idempotent."""
    session.execute(delete(OwnershipRule).where(OwnershipRule.source == source))
    session.add_all(rules)


def all_rules(session: Session) -> list[OwnershipRule]:
    return list(session.scalars(select(OwnershipRule).order_by(OwnershipRule.source, OwnershipRule.position)))


_GLOB_CHARS = re.compile(r"[*?\[\\]")


def normalise_path(path: str) -> str:
    """Repository-relative form of a path as patterns expect it (no ``./`` or leading ``/``)."""
    return path.removeprefix("./").lstrip("/")


@dataclass(frozen=True)
class CompiledPattern:
    """One CODEOWNERS-style pattern as a regex, with the path segments every match must start with.

    Patterns follow gitignore as documented (``docs/*`` owns direct children
    only, ``docs/`` or ``/docs`` everything under it, ``*.js`` any such file),
    which is also what GitHub's CODEOWNERS does. The regex runs on RE2, in time linear in the path:
    under Python's backtracking ``re`` a file's ``*a*a*a*a*b`` or ``x/**/a/**/a/**/a/**/a/b`` took
    seconds to hours on one path, so one line of a CODEOWNERS or catalog stalled every RCA.
    """

    pattern: str
    regex: Any  # google-re2's compiled pattern, which the package does not export as a type
    literal_prefix: tuple[str, ...]

    @classmethod
    def compile(cls, pattern: str) -> CompiledPattern:
        try:
            source, _include = GitIgnoreBasicPattern.pattern_to_regex(pattern)
            if source is None:
                raise ValueError("it matches nothing")
            return cls(pattern, re2.compile(source), _literal_prefix(pattern))
        except (ValueError, re.error, re2.error) as error:
            raise ValueError(f"invalid path pattern {pattern!r}: {error}") from error

    def matches(self, path: str) -> bool:
        return self.regex.match(path) is not None


@lru_cache(maxsize=1 << 16)
def compile_pattern(pattern: str) -> CompiledPattern:
    """A compiled pattern, cached: catalogs and rule sets repeat the same few patterns."""
    return CompiledPattern.compile(pattern)


def _literal_prefix(pattern: str) -> tuple[str, ...]:
    """Leading segments a matching path must start with; empty when the pattern floats."""
    stripped = pattern.rstrip("/")
    anchored = stripped.startswith("/") or "/" in stripped
    if not anchored:
        return ()
    prefix: list[str] = []
    for segment in stripped.lstrip("/").split("/"):
        if not segment or _GLOB_CHARS.search(segment):
            break
        prefix.append(segment)
    return tuple(prefix)


@dataclass
class _Node:
    rules: list[tuple[int, CompiledPattern, OwnershipRule]] = field(default_factory=list)
    children: dict[str, _Node] = field(default_factory=dict)


class OwnershipIndex:
    """Rules compiled once and filed in a trie of literal path prefixes, so a path only
    tests the few rules that could match it (a kernel MAINTAINERS has ~20,000 patterns).

    Within one section of one source the last matching rule wins, and a rule with no
    owners unsets; sections (GitLab ``[Section]`` headers, MAINTAINERS entries) and
    sources add their owners together.
    """

    def __init__(self, rules: list[tuple[CompiledPattern, OwnershipRule]]) -> None:
        self._root = _Node()
        for order, (compiled, rule) in enumerate(rules):
            node = self._root
            for segment in compiled.literal_prefix:
                node = node.children.setdefault(segment, _Node())
            node.rules.append((order, compiled, rule))

    @classmethod
    def from_rules(cls, rules: list[OwnershipRule]) -> OwnershipIndex:
        """Compile stored rules; a pattern that cannot compile raises ``ValueError`` naming it."""
        ordered = sorted(rules, key=lambda rule: (rule.source, rule.position))
        return cls([(compile_pattern(rule.pattern), rule) for rule in ordered])

    def matching_rules(self, path: str) -> list[OwnershipRule]:
        """The rules that decide ``path``'s owners, one per section, empty ones dropped."""
        path = normalise_path(path)
        candidates = list(self._root.rules)
        node = self._root
        for segment in path.split("/"):
            child = node.children.get(segment)
            if child is None:
                break
            candidates.extend(child.rules)
            node = child
        candidates.sort(key=lambda entry: entry[0], reverse=True)
        decided: dict[tuple[str, str], OwnershipRule] = {}
        for _order, compiled, rule in candidates:
            key = (rule.source, rule.section)
            if key not in decided and compiled.matches(path):
                decided[key] = rule
        winners = sorted(decided.values(), key=lambda rule: (rule.source, rule.position))
        return [rule for rule in winners if rule.owners]

    def owners(self, path: str) -> list[str]:
        """Everyone who owns ``path``, in file order, without repeats."""
        owners: dict[str, None] = {}
        for rule in self.matching_rules(path):
            owners.update(dict.fromkeys(rule.owners))
        return list(owners)
