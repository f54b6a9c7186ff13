"""Train a challenger, replay it against the champion on cases neither trained on, and decide.

The champion is the promoted version, else the model that answers without one (the
trained file at ``CULPRIT_RANKER_PATH``, else the starter ranker, else the heuristic
blend): a challenger must beat what the team is served. The replay cases are the
latest labelled cases that started after the champion's training ended (split by time: the latest share of them, at least
:data:`MIN_REPLAY`); the challenger trains on every labelled case before them.
It is promoted only if its top-5 is no worse than the champion's by more than
:data:`TOP5_TOLERANCE` and its calibration error no worse by more than
:data:`ECE_TOLERANCE`, or than that error's sampling noise on the replay
cases when it is larger (:func:`ece_tolerance`). A promoted challenger is refit on every case, replay
included, so the next retrain replays only cases newer than it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from knowledge.errors import CulpritError
from knowledge.ingest.history_files import HistoryCase
from tools.rca.history.backtest import AnswerFn, replay_case
from tools.rca.history.cases import History
from tools.rca.history.from_store import store_history
from tools.rca.history.training import train_model
from tools.rca.judges.local import TRAINED, LocalJudge, RankerModel, load_model
from tools.rca.judges.starter import load_starter
from tools.rca.resources import RcaResources, promoted_unreadable
from tools.rca.retrain import registry
from tools.rca.retrain.calibration import ECE_BINS, expected_calibration_error

log = structlog.get_logger(__name__)

TOP5_TOLERANCE = 0.01
ECE_TOLERANCE = 0.02
MIN_REPLAY = 10
REPLAY_SHARE = 0.3
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Figures:
    """One model replayed on the replay cases."""

    top5: float
    ece: float
    cases: int

    def to_dict(self) -> dict[str, float]:
        return {"top5": self.top5, "ece": self.ece, "cases": self.cases}


@dataclass
class Verdict:
    """What a retrain decided, with both models' figures, for the ops channel and the CLI."""

    outcome: str  # promoted | refused | skipped
    reason: str
    champion_version: int | None
    challenger_version: int | None = None
    champion: Figures | None = None
    challenger: Figures | None = None
    trained_on: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    champion_name: str = "heuristic blend (no champion yet)"

    @property
    def text(self) -> str:
        head = {"promoted": "✅ promoted", "refused": "🛑 refused", "skipped": "⏭️ skipped"}[self.outcome]
        lines = [f"*Ranker retrain: {head}* — {self.reason}"]
        if self.challenger is not None and self.champion is not None:
            lines.append(
                f"• challenger v{self.challenger_version}: top-5 {self.challenger.top5:.3f}, ECE {self.challenger.ece:.3f}"
                f" (trained on {self.trained_on} cases)"
            )
            name = f"v{self.champion_version}" if self.champion_version else self.champion_name
            lines.append(f"• champion {name}: top-5 {self.champion.top5:.3f}, ECE {self.champion.ece:.3f}")
            lines.append(f"• replayed on the latest {self.challenger.cases} cases the champion never trained on")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "champion_version": self.champion_version,
            "champion_name": f"v{self.champion_version}" if self.champion_version else self.champion_name,
            "challenger_version": self.challenger_version,
            "champion": self.champion.to_dict() if self.champion else None,
            "challenger": self.challenger.to_dict() if self.challenger else None,
            "trained_on": self.trained_on,
        }


def replay_figures(
    model: RankerModel | None, cases: Sequence[HistoryCase], history: History, answer_fn: AnswerFn
) -> Figures:
    """Answer each case as it happened (no threshold) and score the five and the stated confidence."""
    resources = RcaResources(model=model, min_confidence=0.0)
    judge = LocalJudge(model)
    outcomes = [replay_case(case, history, resources, answer_fn, judge, False) for case in cases]
    hits = [outcome.rank is not None and outcome.rank <= 5 for outcome in outcomes]
    return Figures(
        top5=round(sum(hits) / max(len(hits), 1), 4),
        ece=round(expected_calibration_error([outcome.confidence for outcome in outcomes], hits), 4),
        cases=len(outcomes),
    )


def ece_tolerance(cases: int) -> float:
    """How much worse a challenger's calibration error may be: :data:`ECE_TOLERANCE`, or the error's
    sampling noise on ``cases`` answers when that is larger.

    A perfectly calibrated model answering ``n`` cases spread over ``b`` bins
    still shows an error of about sqrt(2/pi) * 0.5 * sqrt(b / n) (the mean
    distance of a bin's hit rate from its true rate, at worst when that is
    one half): about 0.24 on 27 cases. A fixed 0.02 on so few cases refused
    challengers for noise, whichever way a CPU's arithmetic rounded.
    """
    noise = math.sqrt(2 / math.pi) * 0.5 * math.sqrt(ECE_BINS / max(cases, 1))
    return round(max(ECE_TOLERANCE, noise), 3)


def passes_gate(challenger: Figures, champion: Figures) -> tuple[bool, str]:
    """The promotion rule, with the reason in words."""
    if challenger.top5 < champion.top5 - TOP5_TOLERANCE:
        return False, f"top-5 {challenger.top5:.3f} is worse than the champion's {champion.top5:.3f} by more than {TOP5_TOLERANCE}"
    tolerance = ece_tolerance(min(challenger.cases, champion.cases))
    if challenger.ece > champion.ece + tolerance:
        return False, (
            f"calibration error {challenger.ece:.3f} is worse than the champion's {champion.ece:.3f} by more than "
            f"{tolerance} (the most that noise explains on {min(challenger.cases, champion.cases)} cases)"
        )
    return True, "no worse than the champion on cases neither trained on"


def replay_split(cases: Sequence[HistoryCase], trained_until: float | None) -> tuple[list[HistoryCase], list[HistoryCase]]:
    """(cases to train on, cases to replay): the replay cases are the latest of those the champion never saw."""
    ordered = sorted(cases, key=lambda case: (case.incident.time, case.case_id))
    unseen = [case for case in ordered if trained_until is None or case.incident.time >= trained_until]
    if len(unseen) < MIN_REPLAY:
        return ordered, []
    n_replay = max(MIN_REPLAY, math.ceil(len(unseen) * REPLAY_SHARE))
    replay = unseen[-n_replay:]
    return ordered[: len(ordered) - n_replay], replay


def retrain(
    database_url: str,
    data_dir: Path,
    answer_fn: AnswerFn,
    *,
    window_days: int = 14,
    progress: Progress | None = None,
    serving: RankerModel | None = None,
) -> Verdict:
    """Train a challenger on the store's labelled history, gate it against the champion, record the verdict.

    ``serving`` is the model that answers while no version is promoted (the trained file or the starter
    ranker; None: the heuristic blend); with none promoted it is the champion, or a challenger that only
    beat the blend would replace a better model the team trained."""
    say = progress or (lambda _message: None)
    promoted = registry.champion(database_url, data_dir=data_dir)
    champion_model, unreadable = _champion_model(promoted, serving)
    current = None if unreadable else promoted
    say("reading labelled incidents from the store")
    history = store_history(database_url, window_days)
    train_cases, replay = replay_split(history.cases, _trained_until(current, champion_model))
    champion_name = unreadable or _unversioned_name(champion_model)
    if not replay:
        return Verdict(
            "skipped",
            f"only {_unseen(history, current, champion_model)} labelled cases since the champion's training;"
            f" at least {MIN_REPLAY} are needed to judge a challenger",
            current.version if current else None,
            champion_name=champion_name,
        )
    if not train_cases:
        return Verdict("skipped", "no labelled case is older than the replay cases", current.version if current else None,
                       champion_name=champion_name)
    say(f"training a challenger on {len(train_cases)} cases")
    challenger_model = train_model(history, train_cases, None, cutoffs=_cutoffs(replay))
    say(f"replaying {len(replay)} cases with both models")
    challenger = replay_figures(challenger_model, replay, history, answer_fn)
    champion = replay_figures(champion_model, replay, history, answer_fn)
    promote, reason = passes_gate(challenger, champion)
    figures = {"challenger": challenger.to_dict(), "champion": champion.to_dict(),
               "champion_version": current.version if current else None, "replay_cases": [c.case_id for c in replay][:200]}
    if promote:
        say(f"refitting the challenger on all {len(history.cases)} cases")
        final = train_model(history, history.cases, None)
        added = registry.add_version(final, data_dir, database_url, figures=figures, status=registry.CHALLENGER, note=reason)
        registry.promote(added.version, database_url, data_dir=data_dir, note=reason)
    else:
        added = registry.add_version(challenger_model, data_dir, database_url, figures=figures, status=registry.REFUSED, note=reason)
        registry.prune_refused(database_url, data_dir=data_dir)
    verdict = Verdict(
        "promoted" if promote else "refused", reason, current.version if current else None, added.version,
        champion, challenger, len(train_cases), champion_name=champion_name,
    )
    log.info("retrain verdict", **verdict.to_dict())
    return verdict


def _champion_model(
    promoted: registry.VersionInfo | None, serving: RankerModel | None
) -> tuple[RankerModel | None, str | None]:
    """The champion's model, and None; or, when the promoted version's file cannot be read, the starter
    ranker that answers in its place (``tools.rca.resources``) and why: a damaged champion must not stop
    the retrain that can replace it, and the challenger must beat what really answers."""
    if promoted is None:
        return serving, None
    try:
        return load_model(Path(promoted.path)), None
    except CulpritError as error:
        why = promoted_unreadable(registry.ServingModel(promoted.version, Path(promoted.path)), error)
        return load_starter(), f"starter ranker that answers because {why}"


def _trained_until(current: registry.VersionInfo | None, champion: RankerModel | None) -> float | None:
    """Where the champion's training ended: the replay cases start after it. The starter ranker learned
    other repositories, so every case of the team's is new to it."""
    if current is not None:
        return current.trained_until
    return champion.trained_until if champion is not None and champion.origin == TRAINED else None


def _unversioned_name(serving: RankerModel | None) -> str:
    """The champion's name in the verdict when no version is promoted."""
    if serving is None:
        return "heuristic blend (no champion yet)"
    kind = "trained model" if serving.origin == TRAINED else "starter ranker"
    return f"{kind} that answers (no version promoted yet)"


def _unseen(history: History, current: registry.VersionInfo | None, champion: RankerModel | None) -> int:
    trained_until = _trained_until(current, champion)
    return sum(1 for case in history.cases if trained_until is None or case.incident.time >= trained_until)


def _cutoffs(replay: Sequence[HistoryCase]) -> dict[str, float]:
    """Per repository, the first replay case's start: the challenger's maps learn nothing after it."""
    cutoffs: dict[str, float] = {}
    for case in replay:
        cutoffs[case.repo] = min(cutoffs.get(case.repo, math.inf), float(case.incident.time))
    return cutoffs
