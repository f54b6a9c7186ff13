"""Checks on what the database and the data directory hold: schema, trained model, sources, job runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from bot.doctor import CheckResult, DoctorOptions, failed, passed, skipped
from knowledge.config import Settings, masked_url
from knowledge.db import alembic_config, get_engine, session_scope, utcnow

DATABASE_FIX = "start the database or set CULPRIT_DATABASE_URL to one that answers"


def check_database(settings: Settings, options: DoctorOptions) -> list[CheckResult]:
    """The database answers and its schema is at Alembic's head revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    url = settings.resolved_database_url
    shown = masked_url(url)
    try:
        with get_engine(url).connect() as connection:
            connection.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0][:200]
        return [failed("database", f"cannot reach {shown} ({reason})", DATABASE_FIX)]
    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    if current != heads:
        at = ", ".join(sorted(current)) or "no schema"
        return [failed("database", f"{shown} is at {at}, not {', '.join(sorted(heads))}", "run `culprit db upgrade`")]
    return [passed("database", f"{shown} answers, schema at {', '.join(sorted(heads))}")]


def check_model(settings: Settings, options: DoctorOptions) -> list[CheckResult]:
    """The model that answers: the promoted version's file, else the configured one; there, of this version, how old."""
    from knowledge.errors import CulpritError
    from knowledge.model_files import leftover_pickle, pickled_model
    from tools.rca.judges.local import PICKLED_NAME
    from tools.rca.resources import promoted_unreadable
    from tools.rca.retrain.registry import serving_model

    promoted = serving_model(settings.resolved_database_url, data_dir=settings.data_dir)
    if promoted.path is not None:
        try:
            detail = _model_detail(promoted.path)
        except CulpritError as error:
            return [failed(
                "model", f"{promoted_unreadable(promoted, error)}; {_stand_in()}",
                "promote a version whose file loads (`culprit model list`, `culprit model rollback`) "
                "or retrain with `culprit model retrain`",
            )]
        return [passed("model", f"promoted version {promoted.version}: {detail}")]
    path = settings.resolved_ranker_path
    train = "run `culprit train --cases F --commits F` (or `culprit demo`)"
    if (old := leftover_pickle(path, PICKLED_NAME)) is not None:
        return [failed("model", f"{pickled_model(old)}; {_stand_in()}", train)]
    if not path.exists():
        return [failed("model", f"no trained model at {path}; {_stand_in()}", train)]
    try:
        return [passed("model", _model_detail(path))]
    except CulpritError as error:
        return [failed("model", str(error), train)]


def _stand_in() -> str:
    """What answers without a model of the team's own, as ``tools.rca.resources.answering_model`` picks it:
    the starter ranker shipped in the package, or the heuristic blend where it is missing."""
    from tools.rca.judges.starter import load_starter
    from tools.rca.resources import STARTER_ANSWERS

    return STARTER_ANSWERS if load_starter() is not None else "RCA ranks with the heuristic blend only"


def _model_detail(path: Path) -> str:
    """What the ranker file at ``path`` holds, loaded whole as an answer loads it: a file whose header reads
    but whose trees or tables are cut short or damaged fails every answer's load, so it fails here too;
    a file that is missing, damaged or of another version raises CulpritError with the load's reason."""
    from tools.rca.judges.local import load_model

    model = load_model(path)
    age = utcnow() - datetime.fromtimestamp(path.stat().st_mtime).astimezone()
    return (
        f"trained {_ago(age)} on {model.n_cases} incidents "
        f"of {', '.join(model.repos) or 'no repository'} ({path})"
    )


def check_sources(settings: Settings, options: DoctorOptions) -> list[CheckResult]:
    """Each repository's newest change; a repository polled with ``ingest git`` is stale past the threshold.

    Repositories loaded only from history files are snapshots (the demo's are):
    their newest change is shown, not judged.
    """
    from knowledge.changes import Change
    from knowledge.ingest.git_tips import IngestedTip

    with session_scope(settings.resolved_database_url) as session:
        newest = dict(session.execute(select(Change.repo, func.max(Change.landed_time)).group_by(Change.repo)).all())
        polled = dict(session.execute(select(IngestedTip.repo, func.max(IngestedTip.ingested_at)).group_by(IngestedTip.repo)).all())
    if not newest:
        return [failed("sources", "no changes stored", "load some with `culprit ingest git PATH` or `culprit ingest history`")]
    now = utcnow()
    limit = timedelta(days=options.stale_after_days)
    results = []
    for repo in sorted(newest):
        landed = newest[repo]
        name = f"sources: {repo}"
        if repo not in polled:
            results.append(skipped(name, f"loaded from history files, not polled; newest change {landed:%Y-%m-%d %H:%M} UTC"))
        elif now - landed > limit:
            results.append(failed(
                name,
                f"newest change landed {_ago(now - landed)} ({landed:%Y-%m-%d}), more than {options.stale_after_days:g} days",
                f"run `culprit ingest git` on {repo} (and check what polls it); if it really had no commits since, "
                "pass --stale-days to raise the threshold",
            ))
        else:
            results.append(passed(name, f"newest change landed {_ago(now - landed)}"))
    return results


def check_scheduler(settings: Settings, options: DoctorOptions) -> list[CheckResult]:
    """When the scheduled jobs last claimed work: the weekly digest (was the last due one posted?) and alerts."""
    from apscheduler.triggers.cron import CronTrigger

    from bot.jobs import WEEKLY_DIGESTS, digest_end, digest_key, last_digest_time
    from knowledge.claims import Claim
    from tools.reports.digest import iso_week
    from tools.reports.spikes import ALERT_POSTS

    url = settings.resolved_database_url
    with session_scope(url) as session:
        last = {
            scope: session.execute(
                select(Claim).where(Claim.scope == scope).order_by(Claim.claimed_at.desc()).limit(1)
            ).scalar_one_or_none()
            for scope in (WEEKLY_DIGESTS, ALERT_POSTS)
        }
    alerts = last[ALERT_POSTS]
    alert_line = f"last alert posted {alerts.claimed_at:%Y-%m-%d %H:%M} UTC" if alerts else "no alert posted yet"
    channel = settings.digest_channel
    if not channel:
        return [skipped("scheduler", f"no CULPRIT_DIGEST_CHANNEL, so no digest to check; {alert_line}")]
    zone = ZoneInfo(settings.digest_timezone)
    trigger = CronTrigger(day_of_week=settings.digest_day_of_week, hour=settings.digest_hour, timezone=zone)
    due = last_digest_time(trigger, utcnow().astimezone(zone))
    digest = last[WEEKLY_DIGESTS]
    digest_line = f"last digest claimed {digest.key} at {digest.claimed_at:%Y-%m-%d %H:%M} UTC" if digest else "no digest yet"
    if due is not None:
        week = iso_week(digest_end(due))
        with session_scope(url) as session:
            row = session.get(Claim, (WEEKLY_DIGESTS, digest_key(week, channel)))
        if row is None or row.done_at is None:
            return [failed(
                "scheduler",
                f"the digest due {due:%Y-%m-%d %H:%M %Z} ({week}) was not posted; {digest_line}; {alert_line}",
                "run one `culprit serve` without --no-scheduler (it posts a missed digest at start)",
            )]
    return [passed("scheduler", f"{digest_line}; {alert_line}")]


def _ago(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    if hours < 1:
        return f"{age.total_seconds() / 60:.0f} min ago"
    return f"{hours:.0f} h ago" if hours < 48 else f"{hours / 24:.0f} days ago"
