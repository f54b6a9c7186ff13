"""Small change records for tests that care about a few fields only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from knowledge.changes import ChangeRecord


def change_record(change_id: str, title: str, landed_time: datetime, paths: Sequence[str] = (), **fields: Any) -> ChangeRecord:
    """A change in ``acme/shop`` authored when it landed, touching ``paths`` (line counts left at 0)."""
    return ChangeRecord(
        id=change_id,
        repo="acme/shop",
        title=title,
        author_time=landed_time,
        landed_time=landed_time,
        files=tuple((path, 0, 0) for path in paths),
        n_files=len(paths),
        **fields,
    )
