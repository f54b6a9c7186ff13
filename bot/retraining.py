"""The weekly retrain as a scheduled job: one replica trains, gates and posts the verdict.

Every replica's scheduler fires the job; a claim per ISO week (with a lease, so
a replica that dies mid-training hands the week to another) lets exactly one of
them retrain. The verdict, with both models' figures, goes to
``CULPRIT_OPS_CHANNEL``. Replicas pick up a promoted model at their next answer
(``bot.runtime.CachedResources``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog

from knowledge.claims import claim, finish
from knowledge.config import Settings
from knowledge.db import utcnow
from knowledge.errors import masked_error
from tools.reports.digest import iso_week

if TYPE_CHECKING:
    from tools.rca.retrain.gate import Verdict

Post = Callable[[str, str, list[dict[str, Any]], bytes | None], Any]
log = structlog.get_logger(__name__)

RETRAINS = "model_retrain"  # claims keyed by ISO week
RETRAIN_LEASE = timedelta(hours=3)


def run_retrain(settings: Settings) -> Verdict:
    """Retrain now on the configured store (``culprit model retrain`` and the job)."""
    from graph.rca_graph import replay_incident  # the graph and LightGBM load only when a retrain runs
    from tools.rca.resources import answering_model
    from tools.rca.retrain.gate import retrain

    serving, _notes = answering_model(settings)  # the champion while no version is promoted
    return retrain(
        settings.resolved_database_url, settings.data_dir, replay_incident,
        window_days=settings.window_days, serving=serving,
    )  # fmt: skip


def scheduled_retrain(post: Post, settings: Settings) -> Verdict | None:
    """This week's retrain, unless another replica claimed it; posts the verdict to the ops channel."""
    url = settings.resolved_database_url
    week = iso_week(utcnow().astimezone(ZoneInfo(settings.digest_timezone)).date())
    if not claim(RETRAINS, week, url, lease=RETRAIN_LEASE):
        log.info("retrain already claimed", week=week)
        return None
    try:
        verdict = run_retrain(settings)
    except Exception as error:  # the team must hear of it: a scheduler log line alone goes unread for weeks
        if settings.ops_channel:
            post(settings.ops_channel, failed_text(error), [], None)
        raise
    if settings.ops_channel:
        post(settings.ops_channel, verdict.text, [], None)
    finish(RETRAINS, week, url)
    return verdict


def failed_text(error: Exception) -> str:
    """The ops channel's line for a retrain that failed: the error (masked) and what still answers."""
    return (
        f"*Ranker retrain: ⚠️ failed* — {masked_error(error)}; the model that answered still answers. "
        "Run `culprit model retrain` to see the whole error."
    )
