"""The tiers and rooms a newcomer is promised in the README hold in the code itself.

Imports point down only (bot -> graph -> tools -> knowledge), ``tools/`` holds
packages rather than loose modules, and every package says what it owns.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIERS = ["knowledge", "tools", "graph", "bot"]  # each may import only those before it


def _modules(tier: str) -> list[Path]:
    return sorted(path for path in (ROOT / tier).rglob("*.py") if "migrations" not in path.parts)


def _imported_tiers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name.split(".")[0] for name in names} & set(TIERS)


@pytest.mark.parametrize("tier", TIERS)
def test_imports_point_down_only(tier: str) -> None:
    allowed = set(TIERS[: TIERS.index(tier) + 1])
    upward = {
        str(path.relative_to(ROOT)): sorted(_imported_tiers(path) - allowed)
        for path in _modules(tier)
        if _imported_tiers(path) - allowed
    }
    assert upward == {}


def test_tools_holds_packages_not_loose_modules() -> None:
    loose = [path.name for path in (ROOT / "tools").glob("*.py") if path.name != "__init__.py"]
    assert loose == []


@pytest.mark.parametrize("tier", ["tools", "knowledge"])
def test_every_package_opens_with_what_it_owns(tier: str) -> None:
    undocumented = [
        str(init.parent.relative_to(ROOT))
        for init in (ROOT / tier).rglob("__init__.py")
        if "migrations" not in init.parts and not ast.get_docstring(ast.parse(init.read_text()))
    ]
    assert undocumented == []
