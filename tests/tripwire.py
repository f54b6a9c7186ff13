"""A pickle that leaves a file behind when it is unpickled: proof that a model file was never unpickled."""

from __future__ import annotations

import pickle
from pathlib import Path


class _Tripwire:
    """Unpickling it touches ``marker``; any code a pickle names runs just as readily."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return Path.touch, (self.marker,)


def booby_trapped_pickle(marker: Path) -> bytes:
    return pickle.dumps(_Tripwire(marker))
