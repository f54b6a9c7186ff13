"""How big and how risky a change is, from the files it touched."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

_RISK_PATTERNS: dict[str, re.Pattern[str]] = {
    "config": re.compile(
        r"(^|/)(config|conf|settings)[^/]*$|\.(ya?ml|toml|ini|cfg|conf|json|properties)$|(^|/)\.env"
    ),
    "migration": re.compile(r"(^|/)(migrations?|alembic|schema)(/|$)|\.sql$"),
    "build": re.compile(
        r"(^|/)(Makefile[^/]*|CMakeLists\.txt|configure(\.ac|\.in)?|meson\.build|[^/]*\.mk|[^/]*\.cmake|"
        r"[^/]*\.am|Dockerfile|setup\.py|pyproject\.toml|package\.json|go\.mod|Cargo\.toml)$|^(m4|cmake|build)/"
    ),
    "dependency": re.compile(r"(^|/)(requirements[^/]*\.txt|poetry\.lock|package-lock\.json|go\.sum|Cargo\.lock)$"),
    "ci": re.compile(r"^(\.github|\.circleci|\.gitlab-ci|ci|\.travis)"),
}
_TEST = re.compile(r"(^|/)(tests?|testing|t|spec|reg-tests)(/|$)|_test\.|test_[^/]*$")
_DOCS = re.compile(r"(^|/)(docs?|Documentation|man)(/|$)|\.(md|rst|txt|adoc|[1-9])$|(^|/)(README|CHANGES|NEWS|RELEASE-NOTES)[^/]*$")


def risk_labels(paths: Sequence[str]) -> list[str]:
    """Kinds of risky files touched: config, migration, build, dependency, ci."""
    return [name for name, pattern in _RISK_PATTERNS.items() if any(pattern.search(path) for path in paths)]


def only_tests(paths: Sequence[str]) -> bool:
    return bool(paths) and all(_TEST.search(path) for path in paths)


def only_docs(paths: Sequence[str]) -> bool:
    return bool(paths) and all(_DOCS.search(path) and not _TEST.search(path) for path in paths)


def touches_code(paths: Sequence[str]) -> bool:
    """At least one file that is neither test nor documentation."""
    return any(not _TEST.search(path) and not _DOCS.search(path) for path in paths)


def size_label(added: int, deleted: int, n_files: int) -> str:
    """A responder's sense of size: tiny, small, medium, large."""
    lines = added + deleted
    if lines <= 10 and n_files <= 2:
        kind = "tiny"
    elif lines <= 100:
        kind = "small"
    elif lines <= 1000:
        kind = "medium"
    else:
        kind = "large"
    return f"{kind} (+{added}/-{deleted} lines in {n_files} file{'s' if n_files != 1 else ''})"


def file_names(paths: Sequence[str]) -> set[str]:
    """Lower-case file names and stems, to spot ``http.c`` or ``http`` named in an incident."""
    names: set[str] = set()
    for path in paths:
        pure = PurePosixPath(path)
        names.add(pure.name.lower())
    return names
