"""Reading the names of changes stored before their patches were read (``culprit ingest names``).

Migration ``0010`` added ``changes.functions`` and ``changes.identifiers`` as
NULL to every change already stored, while ingestion writes a list, empty when
a commit touched no function: NULL means "not read yet", ``[]`` "read, none".
Polls read only new commits, so without this a store upgraded in place stays
blind to the names of its whole history (BM25, ``function_mentions``,
``similar_functions``, explanations).

Each batch of commits still NULL is read from a local clone or mirror with the
same ``git log`` and the same bounds as ingestion
(:func:`knowledge.ingest.git_log.read_patch_names`) and written in its own
transaction, only over rows that are still NULL: an interrupted run keeps what
it wrote and a second run reads only what is left. A commit the repository no
longer holds (force-pushed away, history rewritten) stays NULL and is counted
each run; a stored id that is not a full hex commit id is never handed to git.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from knowledge.changes import Change
from knowledge.db import session_scope
from knowledge.ingest.git_log import FULL_SHA, check_repository, commits_present, read_patch_names
from knowledge.ingest.progress import Progress, Silent

BATCH_SIZE = 500
NOT_A_COMMIT_ID = "not a full hex commit id, never given to git"
NOT_TRACKED = "not a tracked repository: give its clone, `culprit ingest names PATH --repo {repo}`"
NO_MIRROR = "its mirror is not fetched yet: run `culprit ingest repos` first"


@dataclass
class NamesReport:
    """What one repository's backfill found: changes whose names were unknown, and what became of them."""

    repo: str
    source: str
    unknown: int = 0
    filled: int = 0
    """Changes whose names this run wrote (not those another run filled while this one read them)."""
    gone: int = 0
    """Commits the repository no longer holds: they stay unknown (and are counted again next run)."""
    skipped: dict[str, int] = field(default_factory=dict)
    """How many changes were left unknown, by reason."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _unknown(query: Any) -> Any:
    """Commits whose names were never read (NULL, as migration 0010 left them; ingestion writes lists)."""
    return query.where(Change.kind == "commit", Change.functions.is_(None))


def unknown_names_by_repository(url: str) -> dict[str, int]:
    """How many stored commits of each repository have names never read."""
    with session_scope(url) as session:
        rows = session.execute(_unknown(select(Change.repo, func.count())).group_by(Change.repo))
        return {repo: count for repo, count in rows}


def _next_batch(session: Session, repo: str, after: str, size: int) -> list[str]:
    """The next ``size`` unknown ids after ``after`` in id order: ids that stay unknown (gone
    commits) are passed over, so each is looked at once per run."""
    query = _unknown(select(Change.id)).where(Change.repo == repo, Change.id > after)
    return list(session.scalars(query.order_by(Change.id).limit(size)))


def _fill(url: str, names: list[tuple[str, tuple[str, ...], tuple[str, ...]]]) -> int:
    """Write the names read over rows still unknown (another run may have filled some meanwhile);
    returns how many rows this wrote, which is what the report counts as filled."""
    table = Change.__table__
    with session_scope(url) as session:
        written = session.execute(
            update(table).where(table.c.id == bindparam("sha"), table.c.functions.is_(None))
            .values(functions=bindparam("read_functions"), identifiers=bindparam("read_identifiers")),
            [{"sha": sha, "read_functions": list(functions), "read_identifiers": list(identifiers)}
             for sha, functions, identifiers in names],
        )  # fmt: skip
        return int(written.rowcount or 0)


def backfill_names(
    path: Path,
    url: str,
    repo: str,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
    on_functions: Callable[[list[str]], None] | None = None,
) -> NamesReport:
    """Fill in the functions and identifiers of ``repo``'s stored commits whose names are unknown,
    reading their patches from the clone or mirror at ``path``.

    ``on_functions`` hears, after each batch is stored, the ids of its changes that touched a
    function: what is derived from a change's functions (its embedding) must be derived again."""
    progress = progress or Silent()
    check_repository(path)
    report = NamesReport(repo=repo, source=str(path.resolve()))
    with session_scope(url) as session:
        report.unknown = session.scalar(_unknown(select(func.count())).where(Change.repo == repo)) or 0
    progress.start(f"reading the names of {repo}'s stored changes", total=report.unknown)
    skipped: Counter[str] = Counter()
    after = ""
    while True:
        with session_scope(url) as session:
            ids = _next_batch(session, repo, after, batch_size)
        if not ids:
            break
        after = ids[-1]
        shas = [change_id for change_id in ids if FULL_SHA.fullmatch(change_id)]
        skipped[NOT_A_COMMIT_ID] += len(ids) - len(shas)
        present = commits_present(path, shas)
        report.gone += len(shas) - len(present)
        names = list(read_patch_names(path, [sha for sha in shas if sha in present]))
        if names:
            report.filled += _fill(url, names)
        if on_functions is not None:
            on_functions([sha for sha, functions, _identifiers in names if functions])
        progress.advance(len(ids))
    report.skipped = {reason: count for reason, count in skipped.items() if count}
    return report


def backfill_tracked(
    url: str,
    mirrors: Mapping[str, Path],
    repo: str | None = None,
    progress: Progress | None = None,
    on_functions: Callable[[list[str]], None] | None = None,
) -> list[NamesReport]:
    """:func:`backfill_names` for every repository (or only ``repo``) with unknown names, each from
    its mirror in ``mirrors`` (tracked name -> bare mirror); the others are reported skipped, with
    how to fill them."""
    reports: list[NamesReport] = []
    for name, unknown in sorted(unknown_names_by_repository(url).items()):
        if repo is not None and name != repo:
            continue
        mirror = mirrors.get(name)
        if mirror is not None and (mirror / "HEAD").exists():
            reports.append(backfill_names(mirror, url, name, progress, on_functions=on_functions))
            continue
        reason = NOT_TRACKED.format(repo=name) if mirror is None else NO_MIRROR
        reports.append(NamesReport(repo=name, source="", unknown=unknown, skipped={reason: unknown}))
    return reports
