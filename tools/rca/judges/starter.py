"""The starter ranker shipped inside the package, for a team that has not trained its own.

It was trained by ``scripts/build_starter_ranker.py`` on the public curl, git
and haproxy histories of ``shared/data/rca`` as a *portable* model: it holds
only the LightGBM trees and the confidence calibration, nothing learned about
those repositories' code (no component maps, similar-change indexes or past
incidents), so the signals it weighs are the ones any repository has.
"""

from __future__ import annotations

from pathlib import Path

from knowledge.errors import CulpritError
from tools.rca.judges.local import RankerModel, load_model

STARTER_FILE = Path(__file__).with_name("starter_ranker.model")


def load_starter() -> RankerModel | None:
    """The shipped model, or None when this installation lacks it (a trimmed package)."""
    try:
        return load_model(STARTER_FILE)
    except CulpritError:
        return None
