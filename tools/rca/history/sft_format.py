"""The choices a fine-tuning export offers, apart from the exporter so the CLI can
list them in ``--help`` without loading the history readers and the store."""

from __future__ import annotations

from enum import StrEnum

MIN_CANDIDATES = 2
MAX_CANDIDATES = 20


class RecordFormat(StrEnum):
    CHAT = "chat"
    RANKED = "ranked"
