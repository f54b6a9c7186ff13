"""Recall and false positives of the redaction on a labelled set of report lines.

Each line of the set is JSON: ``{"text", "redact": [{"kind", "value"}], "keep": [values]}``.
A secret counts as caught when its value is gone from the redacted text and
its kind's placeholder is there; a kept value (a timestamp, an order id, a git
sha...) counts as a false positive when it is gone. The test suite holds the
redaction to thresholds on ``tests/reports/redaction_labelled.jsonl`` and
``benchmarks/redaction_speed.py`` prints the figures.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tools.reports.redaction import redact

PLACEHOLDERS = {
    "email": "[email]",
    "phone": "[phone]",
    "card": "[card]",
    "iban": "[iban]",
    "ip": "[ip]",
    "credentials": "[credentials]",
    "token": "[token]",
    "api-key": "[api-key]",
    "secret": "[secret]",
    "ssn": "[ssn]",
    "national-id": "[national-id]",
}


@dataclass(frozen=True)
class LabelledLine:
    """A report line, the secrets in it (kind, value) and the values that must survive."""

    text: str
    secrets: tuple[tuple[str, str], ...]
    keep: tuple[str, ...]


@dataclass
class RedactionScore:
    """Caught secrets per kind, and kept values that were redacted anyway, with the lines that show each."""

    caught: Counter[str] = field(default_factory=Counter)
    labelled: Counter[str] = field(default_factory=Counter)
    kept_values: int = 0
    missed: list[tuple[str, str]] = field(default_factory=list)
    over_redacted: list[tuple[str, str]] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.caught.total() / max(1, self.labelled.total())

    @property
    def false_positive_rate(self) -> float:
        return len(self.over_redacted) / max(1, self.kept_values)

    def by_kind(self) -> dict[str, tuple[int, int]]:
        """Caught and labelled secrets for each kind."""
        return {kind: (self.caught[kind], self.labelled[kind]) for kind in sorted(self.labelled)}


def read_labelled(path: Path) -> list[LabelledLine]:
    """The labelled set, one line per report line."""
    lines = []
    with path.open(encoding="utf-8") as handle:
        for raw in handle:
            record = json.loads(raw)
            secrets = tuple((item["kind"], item["value"]) for item in record["redact"])
            lines.append(LabelledLine(record["text"], secrets, tuple(record["keep"])))
    return lines


def score(lines: Iterable[LabelledLine], redactor: Callable[[str], str] = redact) -> RedactionScore:
    """Redact every line and count what was caught and what was taken by mistake."""
    result = RedactionScore()
    for line in lines:
        redacted = redactor(line.text)
        for kind, value in line.secrets:
            result.labelled[kind] += 1
            if value not in redacted and PLACEHOLDERS[kind] in redacted:
                result.caught[kind] += 1
            else:
                result.missed.append((kind, redacted))
        result.kept_values += len(line.keep)
        result.over_redacted.extend((value, redacted) for value in line.keep if value not in redacted)
    return result
