"""What an RCA consults besides the incident: the trained model, change embeddings, ownership, the wiki, and a judge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge.config import Settings
from knowledge.db import session_scope
from knowledge.errors import CulpritError, InputError
from tools.rca.embeddings import ChangeEmbeddings
from tools.rca.judges.protocol import Judge
from tools.rca.judges.llm import LLMJudge
from tools.rca.judges.local import LocalJudge, RankerModel, load_model
from tools.rca.judges.starter import load_starter
from tools.rca.signals.ownership import OwnershipContext, load_ownership
from tools.rca.retrieval import DEFAULT_KEEP

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection


@dataclass
class RcaResources:
    """Loaded once per process (or per backtest) and shared by every RCA.

    ``wiki`` opens the wiki when an answer cites it (opening can fail, and the
    RCA must not); None cites nothing.
    """

    model: RankerModel | None = None
    embeddings: ChangeEmbeddings | None = None
    ownership: OwnershipContext = field(default_factory=OwnershipContext)
    keep: int = DEFAULT_KEEP
    batch_size: int = 20
    min_confidence: float = 0.5
    window_days: int = 14
    poll_seconds: int = 60
    wiki: Callable[[], Collection] | None = None
    notes: list[str] = field(default_factory=list)


def embeddings_dir(data_dir: Path) -> Path:
    return data_dir / "embeddings"


def load_resources(settings: Settings, model_path: Path | None = None) -> RcaResources:
    """The trained model (or a note that the heuristic blend stands in), embeddings, ownership and the wiki."""
    from knowledge.wiki.store import configured_wiki  # Chroma loads only when an answer cites the wiki

    notes: list[str] = []
    model: RankerModel | None = None
    try:
        model = load_model(model_path or settings.resolved_ranker_path)
    except CulpritError as error:
        if model_path is not None:
            raise
        model = load_starter()
        if model is None:
            notes.append(f"ranked by the built-in heuristic blend, confidence uncalibrated ({error})")
    with session_scope(settings.resolved_database_url) as session:
        ownership = load_ownership(session)
    threshold, threshold_from = gate_threshold(model, settings.min_confidence, settings.target_precision)
    if settings.target_precision is not None:
        notes.append(f"confidence threshold {threshold:.2f} from {threshold_from}")
    return RcaResources(
        model=model,
        embeddings=ChangeEmbeddings(embeddings_dir(settings.data_dir)),
        ownership=ownership,
        batch_size=settings.batch_size,
        min_confidence=threshold,
        window_days=settings.window_days,
        poll_seconds=settings.poll_seconds,
        wiki=partial(configured_wiki, settings),
        notes=notes,
    )


def gate_threshold(model: RankerModel | None, min_confidence: float, target_precision: float | None) -> tuple[float, str]:
    """The confidence threshold, and where it came from: ``target_precision`` read off the
    model's leave-one-repository-out precision curve when given (and reachable), else ``min_confidence``."""
    if target_precision is None:
        return min_confidence, "CULPRIT_MIN_CONFIDENCE"
    level = model.confidence.threshold_for(target_precision) if model is not None else None
    if level is None:
        return min_confidence, f"CULPRIT_MIN_CONFIDENCE (no held-out threshold reached precision {target_precision:.2f})"
    return level, f"CULPRIT_TARGET_PRECISION {target_precision:.2f}"


def make_judge(kind: str, model: RankerModel | None, settings: Settings) -> Judge:
    """``local`` (the learned ranker) or ``llm`` (vLLM, falling back to local batch by batch)."""
    local = LocalJudge(model)
    if kind == "local":
        return local
    if kind != "llm":
        raise InputError(f"unknown judge {kind!r}; use local or llm")
    return LLMJudge.from_settings(settings, fallback=local)
