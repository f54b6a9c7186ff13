"""Chart legends that show category names as written."""

from __future__ import annotations

from typing import Any


def plain_legend(axes: Any, handles: list[Any], labels: list[str], **options: Any) -> None:
    """A legend whose labels, category names from labeled files and report words, show as written:
    matplotlib reads "$...$" as TeX (an unknown command failed the whole weekly digest) and leaves
    out a label starting with "_" when it gathers labels itself, so handles and labels are given."""
    legend = axes.legend(handles, labels, **options)
    for text in legend.get_texts():
        text.set_parse_math(False)
