"""A backtest's calibration as a picture: the reliability diagram and the precision/reach curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_calibration(summary: dict[str, Any], path: Path) -> Path:
    """Draw from a backtest summary (its ``calibration`` bins and ``curve``) into a PNG at ``path``.

    Matplotlib's Agg backend draws without a display, so this runs on a server."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (reliability, reach) = plt.subplots(1, 2, figsize=(11, 4.8))
    variant = "symptom-only" if summary.get("symptom_only") else "full text"
    reliability.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    series = {"all": summary} | dict(summary.get("per_repository", {}))
    for name, numbers in series.items():
        bins = [row for row in numbers["calibration"]["bins"] if row["n"]]
        reliability.plot(
            [row["confidence"] for row in bins], [row["hit_rate"] for row in bins], marker="o",
            linewidth=2.5 if name == "all" else 1, label=f"{name} (ECE {numbers['calibration']['ece']:.3f})",
        )
    reliability.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="stated confidence",
                    ylabel="share whose five held the cause", title=f"Reliability ({variant})")
    reliability.legend(fontsize=8, loc="upper left")
    curve = summary["curve"]
    reach.plot([p["reach"] for p in curve], [p["precision"] for p in curve], marker="o")
    for point in curve:
        reach.annotate(f"{point['threshold']:.1f}", (point["reach"], point["precision"]), fontsize=7,
                       textcoords="offset points", xytext=(3, 3))
    gate = summary["gate"]
    reach.scatter([gate["reach"]], [gate["precision"]], s=90, color="red", zorder=3,
                  label=f"threshold {gate['threshold']:.2f}")
    reach.set(xlim=(0, 1.02), xlabel="reach (share of incidents answered)",
              ylabel="precision (answered whose five held the cause)", title="Precision / reach by threshold")
    reach.legend(fontsize=8)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
