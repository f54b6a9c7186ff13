"""``culprit doctor``: what an operator needs to know is working, each check with its fix.

Owns the checks themselves (the database and its schema, Slack's token, scopes
and channel memberships, Chroma and the wiki, the LLM server, the trained
model, each change source's freshness, the scheduler's last runs) and the
order they run in. A part that is not configured is *skipped*, not failed, so
the offline demo passes; a check that needs the database is skipped when the
database check failed, so one broken part shows as exactly one failed line.
Imports ``tools`` and ``knowledge``; the Slack client is made here, in ``bot``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from knowledge.config import Settings
from knowledge.errors import masked_error

Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class CheckResult:
    """One line of the report: which part, how it stands, what was seen, and what to do if it failed."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class DoctorOptions:
    """Thresholds an operator may tune from the command line."""

    stale_after_days: float = 7.0


Check = Callable[[Settings, DoctorOptions], list[CheckResult]]
NEEDS_DATABASE = "needs the database, whose check failed"


def passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "pass", detail)


def failed(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, "fail", detail, fix)


def skipped(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "skip", detail)


def all_checks(cheap_only: bool = False) -> list[tuple[str, Check, bool]]:
    """``(name, check, needs_database)`` in report order; ``cheap_only`` leaves out Chroma and the LLM.

    Imported here so ``culprit --help`` loads none of the checks' libraries.
    """
    from bot.doctor import services, slack, store

    checks: list[tuple[str, Check, bool]] = [
        ("database", store.check_database, False),
        ("slack", slack.check_slack, False),
    ]
    if not cheap_only:
        checks += [("wiki", services.check_wiki, False), ("llm", services.check_llm, False)]
    checks += [
        ("model", store.check_model, False),
        ("sources", store.check_sources, True),
        ("scheduler", store.check_scheduler, True),
    ]
    return checks


def run_checks(
    settings: Settings, options: DoctorOptions | None = None, *, cheap_only: bool = False
) -> list[CheckResult]:
    """Every check's lines; a check that raises fails with its error instead of stopping the others."""
    options = options or DoctorOptions()
    results: list[CheckResult] = []
    database_ok = True
    for name, check, needs_database in all_checks(cheap_only):
        if needs_database and not database_ok:
            results.append(skipped(name, NEEDS_DATABASE))
            continue
        try:
            lines = check(settings, options)
        except Exception as error:  # a check must report, never stop the report
            lines = [failed(name, f"the check itself failed: {masked_error(error)}",
                            "report this with the line above; the other checks still ran")]
        if name == "database":
            database_ok = all(line.status == "pass" for line in lines)
        results.extend(lines)
    return results


def any_failed(results: Sequence[CheckResult]) -> bool:
    return any(result.status == "fail" for result in results)


def log_startup_checks(settings: Settings) -> list[CheckResult]:
    """The quick checks, one log line each (a warning with its fix for a failure), as ``culprit serve`` starts.

    A failure does not stop the bot: a missing model or a stale repository still
    leaves useful answers, and the log line says what to do.
    """
    import structlog

    log = structlog.get_logger("bot.doctor")
    results = run_checks(settings, cheap_only=True)
    for result in results:
        emit = log.warning if result.status == "fail" else log.info
        emit("startup check", check=result.name, status=result.status, detail=result.detail, fix=result.fix or None)
    return results
