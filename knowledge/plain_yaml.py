"""YAML as people write catalogs, front matter and category lists: plain data, never aliases.

An alias (``*name``) repeats a node anchored elsewhere, so a few hundred bytes of
nested aliases ("billion laughs") expand into billions of nodes once anything
walks or copies the result. None of culprit's YAML inputs need one, so every
alias is refused where it appears, as a :class:`yaml.YAMLError` that names its line,
before anything is built from it.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError


class _PlainLoader(yaml.SafeLoader):
    """The safe loader, refusing every alias as it is read."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ComposerError(
                None, None, f"aliases (*{event.anchor}) are not allowed; write the value out", event.start_mark
            )
        return super().compose_node(parent, index)  # type: ignore[arg-type]


def load_plain(text: str) -> Any:
    """The one YAML document in ``text``; an alias raises :class:`yaml.YAMLError`."""
    return yaml.load(text, Loader=_PlainLoader)  # noqa: S506 - a SafeLoader that also refuses aliases


def load_all_plain(text: str) -> list[Any]:
    """Every YAML document in ``text``; an alias raises :class:`yaml.YAMLError`."""
    return list(yaml.load_all(text, Loader=_PlainLoader))  # noqa: S506 - as above
