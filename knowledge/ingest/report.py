"""What one load stored, so a second run can show that it changed nothing."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from knowledge.ingest.history_files import BadLine


@dataclass
class LoadReport:
    """Counts for one kind of record from one source."""

    kind: str
    source: str
    new: int = 0
    already_present: int = 0
    updated: int = 0
    bad_lines: list[str] = field(default_factory=list)
    # What a ``bad_lines`` entry is in the summary, one and many: a git load's are commits.
    skipped_what: ClassVar[tuple[str, str]] = ("bad line", "bad lines")

    def note_bad_lines(self, bad_lines: list[BadLine]) -> None:
        self.bad_lines.extend(f"{bad.path}:{bad.line_no}: {bad.reason}" for bad in bad_lines)

    def notes(self) -> list[str]:
        """Records stored, but not quite as they came (a git load's commits dated ahead of the clock): one line each."""
        return []

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
