"""Expected calibration error: how far stated confidence is from how often the five held the cause."""

from __future__ import annotations

from collections.abc import Sequence

ECE_BINS = 10


def expected_calibration_error(confidences: Sequence[float], hits: Sequence[bool], bins: int = ECE_BINS) -> float:
    """Mean |confidence − hit rate| over equal-width confidence bins, weighted by how many answers fall in each.

    0 is perfectly calibrated; a model that says 90 % and is right half the time scores 0.4.
    """
    if len(confidences) != len(hits):
        raise ValueError("one hit per confidence")
    if not confidences:
        return 0.0
    totals = [0] * bins
    stated = [0.0] * bins
    held = [0] * bins
    for confidence, hit in zip(confidences, hits, strict=True):
        index = min(int(max(confidence, 0.0) * bins), bins - 1)
        totals[index] += 1
        stated[index] += confidence
        held[index] += int(hit)
    return sum(abs(stated[i] - held[i]) for i in range(bins) if totals[i]) / len(confidences)
