"""deploy/compose.yml as Docker Compose would see it: parsed, with ``${...}`` resolved.

No Docker engine runs where the tests do, so the file is checked by reading it
the way Compose does: YAML with merge keys, then variable interpolation from an
environment (``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
``${VAR:?error}``, ``$$`` for a literal dollar).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
COMPOSE_FILE = DEPLOY_DIR / "compose.yml"
ENV_EXAMPLE = DEPLOY_DIR / ".env.example"

_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariable(KeyError):
    """A ``${VAR:?message}`` whose variable is unset or empty: Compose refuses to start."""


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """``NAME=value`` lines; comments and blank lines skipped."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip()
    return values


def variables_in(text: str) -> set[str]:
    """Every variable name the file refers to with ``${...}``."""
    return {match["name"] for match in _VARIABLE.finditer(text) if match["name"]}


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Resolve one parsed value (recursively) as Compose does."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        current = env.get(name)
        unset_or_empty = not current
        if op == ":-":
            return arg if unset_or_empty else current  # type: ignore[return-value]
        if op == "-":
            return arg if current is None else current
        if op in {":?", "?"} and (unset_or_empty if op == ":?" else current is None):
            raise MissingVariable(f"{name}: {arg}")
        return current or ""

    return _VARIABLE.sub(substitute, value)


def resolved_compose(env: dict[str, str]) -> dict[str, Any]:
    return interpolate(load_compose(), env)
