"""YAML as people write catalogs, front matter and category lists: plain data, never aliases.

An alias (``*name``) repeats a node anchored elsewhere, so a few hundred bytes of
nested aliases ("billion laughs") expand into billions of nodes once anything
walks or copies the result. None of culprit's YAML inputs need one, so every
alias is refused where it appears, as a :class:`yaml.YAMLError` that names its line,
before anything is built from it. So is nesting deeper than :data:`MAX_DEPTH`: PyYAML
composes nodes by recursion, and ``[[[[...`` a few thousand deep ended in a
``RecursionError`` that stopped a whole ingest instead of refusing its file or page.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError


MAX_DEPTH = 100
"""Most levels of nested lists and mappings: catalogs and front matter need a handful."""


class _PlainLoader(yaml.SafeLoader):
    """The safe loader, refusing every alias and nesting past :data:`MAX_DEPTH` as they are read."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ComposerError(
                None, None, f"aliases (*{event.anchor}) are not allowed; write the value out", event.start_mark
            )
        if self.depth >= MAX_DEPTH:
            raise ComposerError(
                None, None, f"nested over {MAX_DEPTH} levels deep; flatten it", self.peek_event().start_mark
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            self.depth -= 1


def load_plain(text: str) -> Any:
    """The one YAML document in ``text``; an alias raises :class:`yaml.YAMLError`."""
    return yaml.load(text, Loader=_PlainLoader)  # noqa: S506 - a SafeLoader that also refuses aliases


def load_all_plain(text: str) -> list[Any]:
    """Every YAML document in ``text``; an alias raises :class:`yaml.YAMLError`."""
    return list(yaml.load_all(text, Loader=_PlainLoader))  # noqa: S506 - as above
