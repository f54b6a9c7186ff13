"""What an RCA consults besides the incident: the trained model, change embeddings, ownership, the wiki, and a judge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from knowledge.config import Settings
from knowledge.db import session_scope
from knowledge.errors import CulpritError, InputError
from knowledge.model_files import leftover_pickle
from tools.rca.embeddings import ChangeEmbeddings
from tools.rca.judges.protocol import Judge
from tools.rca.judges.llm import LLMJudge
from tools.rca.judges.local import PICKLED_NAME, RETRAIN, LocalJudge, RankerModel, load_model
from tools.rca.judges.starter import load_starter
from tools.rca.signals.ownership import OwnershipContext, load_ownership
from tools.rca.retrieval import DEFAULT_KEEP

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

    from tools.rca.retrain.registry import ServingModel

log = structlog.get_logger(__name__)
# Model files already logged as unreadable, with why: the bot reloads its resources every few minutes, and
# one warning per file and reason says it; the note stays on every answer.
_WARNED_UNREADABLE: set[str] = set()

# With neither CULPRIT_MIN_CONFIDENCE nor CULPRIT_TARGET_PRECISION set (see ``gate_threshold``).
DEFAULT_TARGET_PRECISION = 0.9
FALLBACK_MIN_CONFIDENCE = 0.5
STARTER_ANSWERS = "the starter ranker answers instead"


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


def answering_model(
    settings: Settings, promoted: ServingModel | None = None
) -> tuple[RankerModel | None, list[str]]:
    """The promoted version's model or the trained model, else the starter ranker, else none (with a note saying the blend stands in).

    No trained model yet is the normal start and says nothing; a promoted or
    trained file that is there but cannot be read (damaged, outdated), a
    promoted version whose file is gone, or only the pickle an earlier culprit
    left under its old name, is a note in every answer and a warning in the
    log, or the team would believe its own model answers while the starter
    does (and one bad file must not fail every answer).
    """
    if promoted is not None and promoted.path is not None:
        try:
            return load_model(promoted.path), []
        except CulpritError as error:
            why = promoted_unreadable(promoted, error)
            _warn_once("promoted_model_unreadable", promoted.path, why, version=promoted.version)
            return _starter_instead(why, error)
    path = settings.resolved_ranker_path
    try:
        return load_model(path), []
    except CulpritError as error:
        old = leftover_pickle(path, PICKLED_NAME)
        if path.exists() or old is not None:
            _warn_once("trained_model_unreadable", old or path, str(error))
            return _starter_instead(str(error) if old else f"the trained model at {path} could not be loaded ({error})", error)
        return _starter_instead(None, error)


def promoted_unreadable(promoted: ServingModel, error: CulpritError) -> str:
    """Why the promoted version does not answer, as the answers, the log and ``culprit doctor`` say it."""
    if promoted.path is None or not promoted.path.exists():
        reason = "its file is gone"
    else:  # less the load's "retrain with `culprit train`": that file does not serve while a version is promoted
        reason = str(error).removesuffix(f"; {RETRAIN}")
    return f"the promoted model version {promoted.version} at {promoted.path} could not be loaded ({reason})"


def _warn_once(event: str, path: Path, error: str, **fields: object) -> None:
    if f"{path}: {error}" not in _WARNED_UNREADABLE:
        _WARNED_UNREADABLE.add(f"{path}: {error}")
        log.warning(event, path=str(path), error=error, **fields)


def _starter_instead(why: str | None, error: CulpritError) -> tuple[RankerModel | None, list[str]]:
    """The starter ranker, with ``why`` it answers (None: nothing to tell, no model was ever there)."""
    model = load_starter()
    if model is None:
        return None, [f"ranked by the built-in heuristic blend, confidence uncalibrated ({why or error})"]
    return model, [f"{why}; {STARTER_ANSWERS}"] if why else []


def load_resources(settings: Settings, promoted: ServingModel | None = None) -> RcaResources:
    """The trained model (or a note that the heuristic blend stands in), embeddings, ownership and the wiki."""
    from knowledge.wiki.store import configured_wiki  # Chroma loads only when an answer cites the wiki

    model, notes = answering_model(settings, promoted)
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


def gate_threshold(
    model: RankerModel | None, min_confidence: float | None, target_precision: float | None
) -> tuple[float, str]:
    """The confidence threshold, and where it came from.

    ``target_precision`` is read off the model's leave-one-repository-out precision
    curve; ``min_confidence`` alone is used as it is; with neither, the default target
    precision (0.9) is read off the curve. A fixed 0.5 let through answers held out
    as right only 0.94 (full text) and 0.81 (symptom only) of the time, against the
    0.9 a responder is told to expect; the curve's 0.9 stops at 0.75 on the shared
    history (docs/rca.md). Where the curve never reaches the precision (or there is
    no model), ``min_confidence`` or 0.5 stands in."""
    if target_precision is None and min_confidence is not None:
        return min_confidence, "CULPRIT_MIN_CONFIDENCE"
    fallback = (min_confidence, "CULPRIT_MIN_CONFIDENCE") if min_confidence is not None else (
        FALLBACK_MIN_CONFIDENCE, f"the fallback threshold {FALLBACK_MIN_CONFIDENCE:.2f}"
    )
    target, source = (
        (target_precision, "CULPRIT_TARGET_PRECISION") if target_precision is not None
        else (DEFAULT_TARGET_PRECISION, "the default target precision")
    )
    level = model.confidence.threshold_for(target) if model is not None else None
    if level is None:
        return fallback[0], f"{fallback[1]} (no held-out threshold reached precision {target:.2f})"
    return level, f"{source} {target:.2f}"


def answer_threshold(settings: Settings) -> float:
    """The threshold the bot answers with under ``settings`` (with the promoted model, as
    ``bot.runtime`` loads it): for figures that count confident answers (the digest,
    feedback stats) as the answers themselves were gated."""
    from tools.rca.retrain.registry import serving_model

    model, _notes = answering_model(settings, serving_model(settings.resolved_database_url, data_dir=settings.data_dir))
    return gate_threshold(model, settings.min_confidence, settings.target_precision)[0]


def make_judge(kind: str, model: RankerModel | None, settings: Settings) -> Judge:
    """``local`` (the learned ranker) or ``llm`` (vLLM, falling back to local batch by batch)."""
    local = LocalJudge(model)
    if kind == "local":
        return local
    if kind != "llm":
        raise InputError(f"unknown judge {kind!r}; use local or llm")
    return LLMJudge.from_settings(settings, fallback=local)
