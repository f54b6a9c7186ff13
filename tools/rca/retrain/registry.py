"""Model versions: files in ``<data dir>/models``, rows in ``model_versions``, one champion at a time.

Promoting or rolling back is one transaction on the rows, so every replica that
next asks :func:`champion` gets the same answer; replicas compare the version
they hold with it before each use and load the new file when it changed.

A row names its file relative to the data directory's ``models`` folder, so a
data directory copied or moved (a backup restored elsewhere, a volume mounted
at another path) still serves its versions; rows from before name it whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from knowledge.confirmations import ModelVersion
from knowledge.db import session_scope, utcnow
from knowledge.errors import InputError
from tools.rca.judges.local import RankerModel, save_model

CHALLENGER = "challenger"
CHAMPION = "champion"
RETIRED = "retired"
REFUSED = "refused"
ROLLED_BACK = "rolled_back"
KEEP_REFUSED_FILES = 3


@dataclass(frozen=True)
class VersionInfo:
    """A model version as the CLI and the verdict show it."""

    version: int
    path: str
    created_at: datetime
    trained_until: float
    n_cases: int
    status: str
    champion: bool
    promoted_at: datetime | None
    figures: dict[str, Any]
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "created_at": self.created_at.isoformat(),
            "promoted_at": self.promoted_at.isoformat() if self.promoted_at else None,
        }


def _info(row: ModelVersion, data_dir: Path) -> VersionInfo:
    return VersionInfo(
        row.version, str(_file(row, data_dir)), row.created_at, row.trained_until, row.n_cases, row.status,
        row.champion, row.promoted_at, dict(row.figures or {}), row.note,
    )


def models_dir(data_dir: Path) -> Path:
    return data_dir / "models"


def _file(row: ModelVersion, data_dir: Path) -> Path:
    """Where the version's file is now: a bare name is in ``data_dir``'s models folder; an older row's path is whole."""
    stored = Path(row.path)
    return models_dir(data_dir) / stored if stored.name == row.path else stored


def add_version(
    model: RankerModel, data_dir: Path, database_url: str, *, figures: dict[str, Any], status: str, note: str = ""
) -> VersionInfo:
    """Save ``model`` as the next version's file and record it (not yet the champion)."""
    for _attempt in range(3):  # two replicas numbering at once: the loser takes the next number
        with session_scope(database_url) as session:
            version = (session.scalar(select(func.max(ModelVersion.version))) or 0) + 1
        path = save_model(model, models_dir(data_dir) / f"ranker-v{version}.model")
        try:
            with session_scope(database_url) as session:
                row = ModelVersion(
                    version=version, path=path.name, trained_until=model.trained_until, n_cases=model.n_cases,
                    status=status, champion=False, figures=figures, note=note,
                )
                session.add(row)
                session.flush()
                return _info(row, data_dir)
        except IntegrityError:
            continue
    raise InputError("could not number a new model version; try again")


def prune_refused(database_url: str, *, data_dir: Path, keep: int = KEEP_REFUSED_FILES) -> list[int]:
    """Delete the files of refused versions but the newest ``keep``; returns the versions pruned.

    A refused challenger is kept to look into why it lost, not to serve, and a
    weekly retrain that keeps losing would otherwise fill the disk with one
    ranker file a week. The rows stay, with their replay figures.
    """
    pruned: list[int] = []
    with session_scope(database_url) as session:
        refused = session.scalars(
            select(ModelVersion).where(ModelVersion.status == REFUSED).order_by(ModelVersion.version.desc())
        ).all()
        for row in refused[keep:]:
            file = _file(row, data_dir)
            if not file.exists():
                continue
            file.unlink()
            row.note = f"{row.note} (file pruned: only the newest {keep} refused versions keep theirs)".strip()
            pruned.append(row.version)
    return pruned


def champion(database_url: str, *, data_dir: Path) -> VersionInfo | None:
    with session_scope(database_url) as session:
        row = session.scalars(select(ModelVersion).where(ModelVersion.champion.is_(True))).first()
        return _info(row, data_dir) if row else None


@dataclass(frozen=True)
class ServingModel:
    """The promoted version and its file, or (None, None): then the configured ranker path serves."""

    version: int | None
    path: Path | None


def serving_model(database_url: str, *, data_dir: Path) -> ServingModel:
    """What a replica should answer with right now: the champion when one is promoted.

    Its file may be gone or damaged: the replica then answers with the starter
    ranker and says which version failed (``tools.rca.resources``), rather than
    passing silently to the configured file the team no longer means to serve.
    """
    try:
        current = champion(database_url, data_dir=data_dir)
    except SQLAlchemyError:  # a store from before model versions (not migrated yet): the configured file serves
        return ServingModel(None, None)
    if current is None:
        return ServingModel(None, None)
    return ServingModel(current.version, Path(current.path))


def versions(database_url: str, *, data_dir: Path) -> list[VersionInfo]:
    with session_scope(database_url) as session:
        rows = session.scalars(select(ModelVersion).order_by(ModelVersion.version.desc()))
        return [_info(row, data_dir) for row in rows]


def version(number: int, database_url: str, *, data_dir: Path) -> VersionInfo:
    with session_scope(database_url) as session:
        row = session.get(ModelVersion, number)
        if row is None:
            raise InputError(f"no model version {number}; see `culprit model list`")
        return _info(row, data_dir)


def promote(number: int, database_url: str, *, data_dir: Path, note: str = "") -> VersionInfo:
    """Make ``number`` the champion; the previous one is retired (and is what rollback returns to)."""
    with session_scope(database_url) as session:
        row = session.get(ModelVersion, number)
        if row is None:
            raise InputError(f"no model version {number}; see `culprit model list`")
        _check_file(row, data_dir)
        session.execute(
            update(ModelVersion).where(ModelVersion.champion.is_(True), ModelVersion.version != number)
            .values(champion=False, status=RETIRED)
        )
        row.champion, row.status, row.promoted_at = True, CHAMPION, utcnow()
        if note:
            row.note = note
        session.flush()
        return _info(row, data_dir)


def _check_file(row: ModelVersion, data_dir: Path) -> None:
    """Refuse to serve a version whose file is gone: every answer would fall back to the starter ranker."""
    file = _file(row, data_dir)
    if not file.exists():
        raise InputError(f"model version {row.version}'s file {file} is gone; retrain with `culprit model retrain`")


def rollback(database_url: str, *, data_dir: Path) -> VersionInfo:
    """Return to the champion before the current one; the current one is marked rolled back."""
    with session_scope(database_url) as session:
        current = session.scalars(select(ModelVersion).where(ModelVersion.champion.is_(True))).first()
        previous = session.scalars(
            select(ModelVersion)
            .where(ModelVersion.status == RETIRED, ModelVersion.promoted_at.is_not(None))
            .order_by(ModelVersion.promoted_at.desc())
        ).first()
        if previous is None:
            raise InputError("no earlier champion to roll back to; see `culprit model list`")
        _check_file(previous, data_dir)
        if current is not None:
            current.champion, current.status = False, ROLLED_BACK
        previous.champion, previous.status, previous.promoted_at = True, CHAMPION, utcnow()
        session.flush()
        return _info(previous, data_dir)
