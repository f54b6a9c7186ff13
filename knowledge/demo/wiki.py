"""The demo organisation's wiki and the questions responders ask of it.

Pages follow what on-call teams keep: a runbook per service (symptoms with their
alerts, dashboards, mitigation), a service overview (owner, dependencies,
deployment), postmortems of past incidents, and a few team-wide guides. The
questions are written the way a responder asks mid-incident, from the symptom
or a pasted alert, not from page titles, so that ``culprit wiki evaluate`` can
show whether retrieval understands them.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Symptom:
    """One failure mode of a kind of service: how the runbook names it and how people describe it."""

    heading: str
    alert: str
    signal: str
    mitigation: str
    asked_as: tuple[str, ...]


@dataclass(frozen=True)
class Profile:
    """What a kind of service (API, payments, queue...) looks like when it breaks."""

    words: tuple[str, ...]
    dashboard_panels: str
    symptoms: tuple[Symptom, Symptom]


PROFILES: tuple[Profile, ...] = (
    Profile(
        words=("web", "frontend", "gateway", "api", "edge", "proxy"),
        dashboard_panels="request rate, p50/p99 latency, status codes, rate-limit rejections by client",
        symptoms=(
            Symptom(
                "Slow responses",
                "LatencyHigh",
                "p99 latency above 1.5 s for 10 minutes. Usually a slow upstream, exhausted worker threads "
                "or a cold cache right after a deploy.",
                "Scale out by half again with `kubectl scale deploy/{name} --replicas=+50%`; shed load with the "
                "`{name}.degraded_mode` flag, which turns off non-essential widgets.",
                (
                    "pages served by {name} take forever to load",
                    "{name} got really sluggish in the last half hour",
                ),
            ),
            Symptom(
                "Clients throttled",
                "RateLimited",
                "More than 1% of requests are answered 429 Too Many Requests; a rate-limit rule change or one "
                "client retrying in a tight loop.",
                "Find the top client on the rate-limit panel; raise its quota with `ratelimitctl allow CLIENT "
                "--burst 2x` or revert the last rule change.",
                (
                    "callers complain that {name} rejects their calls and tells them to slow down",
                    "{name} is refusing legit traffic with too-many-requests errors",
                ),
            ),
        ),
    ),
    Profile(
        words=("pay", "checkout", "invoice", "charge"),
        dashboard_panels="authorisation success rate by card network, processor response codes, capture lag",
        symptoms=(
            Symptom(
                "Card authorisations failing",
                "AuthDeclineRate",
                "Authorisation success rate drops below 95% for 10 minutes. The processor answers "
                "ERR_GATEWAY_TIMEOUT or a burst of `do_not_honor` codes; retries make it worse.",
                "Switch traffic to the secondary processor with the `{name}.processor=secondary` flag. "
                "Do not replay declined authorisations in bulk; they count against fraud limits.",
                (
                    "customers say their cards keep getting rejected when they try to pay on {name}",
                    "lots of purchases bouncing with gateway timeouts in {name}",
                ),
            ),
            Symptom(
                "Duplicate captures",
                "DuplicateCapture",
                "The ledger shows two captures for one order; usually an idempotency key reused after a "
                "retry storm or a worker restarted mid-capture.",
                "Pause the capture worker (`{name}-capture` to 0 replicas), then run the reconciliation "
                "job `reconcile --since 2h` and refund the duplicates it lists.",
                (
                    "a customer was billed twice for the same order by {name}",
                    "{name} seems to be taking money two times per order",
                ),
            ),
        ),
    ),
    Profile(
        words=("auth", "login", "identity", "session", "account", "user", "sso"),
        dashboard_panels="sign-in success rate, token validation errors, signing key age",
        symptoms=(
            Symptom(
                "Sign-in failures",
                "LoginSuccessLow",
                "Successful sign-ins drop below 90% of attempts; responses are 401 INVALID_TOKEN. Common "
                "causes: an expired signing key, clock skew between nodes, a broken SSO metadata refresh.",
                "Check the signing key age on the dashboard and rotate with `keyctl rotate {name}`; verify "
                "NTP on the nodes; as a last resort extend existing sessions with `{name}.session_grace`.",
                (
                    "people can't log in through {name}, they get bounced back to the start",
                    "everyone is suddenly unauthorised in {name} and has to re-enter their password",
                ),
            ),
            Symptom(
                "Session store saturation",
                "SessionStoreSaturated",
                "The session store's memory is above 90% and evictions climb, so users are logged out at "
                "random between requests.",
                "Raise the store's memory limit by one step and lower the idle session TTL from 30 to 10 "
                "days; look for a client creating a new session on every request.",
                (
                    "users keep getting kicked out of {name} after a couple of clicks",
                    "{name} forgets who people are between page loads",
                ),
            ),
        ),
    ),
    Profile(
        words=("db", "database", "postgres", "mysql", "storage", "inventory", "catalog"),
        dashboard_panels="replica lag, active connections against the pool limit, slow queries, disk usage",
        symptoms=(
            Symptom(
                "Replica lag",
                "ReplicaLagHigh",
                "Replicas trail the primary by more than 30 seconds; reads that go to replicas return old "
                "rows. Usually a long transaction, a bulk backfill or a vacuum on a large table.",
                "Send reads back to the primary with `{name}.read_from_primary=true`, pause backfills and "
                "analytics exports, and find the long transaction in `pg_stat_activity`.",
                (
                    "{name} shows old data after writes, the copies seem way behind",
                    "stuff saved a minute ago is still missing when we read it back from {name}",
                ),
            ),
            Symptom(
                "Connection pool exhausted",
                "PoolExhausted",
                "Callers log ERR_POOL_EXHAUSTED or `too many clients already`; active connections sit at the "
                "pool limit while most are idle in transaction.",
                "Terminate sessions idle in transaction for more than 5 minutes, then raise the pool by 20% "
                "in `{name}/config/pool.yaml`; check for a recent change that holds connections longer.",
                (
                    "apps can't get a connection to {name}, everything queues waiting for one",
                    "seeing ERR_POOL_EXHAUSTED from {name} in the logs",
                ),
            ),
        ),
    ),
    Profile(
        words=("queue", "worker", "job", "notif", "email", "event", "pipeline", "stream", "mail", "sms"),
        dashboard_panels="queue depth, consumer lag, processing rate, dead-letter queue size",
        symptoms=(
            Symptom(
                "Backlog growing",
                "QueueDepthHigh",
                "Queue depth above 10,000 messages and rising; consumer lag measured in minutes. Either "
                "consumers crash-loop or a downstream call got slower.",
                "Scale consumers with `kubectl scale deploy/{name}-consumer --replicas=12`; if one message "
                "keeps crashing them, move it aside with `dlq park {name} --head`.",
                (
                    "{name} is way behind, messages pile up faster than they are handled",
                    "things sent through {name} arrive hours late",
                ),
            ),
            Symptom(
                "Dead-letter queue filling",
                "DeadLetterGrowth",
                "More than 100 messages an hour land in the dead-letter queue after exhausting retries; the "
                "last error is stored on each message.",
                "Read the last error with `dlq inspect {name} --limit 20`, fix the cause, then replay with "
                "`dlq replay {name}`; never purge without the owning team.",
                (
                    "a lot of {name} messages fail over and over and get parked",
                    "how do I resend the messages {name} gave up on?",
                ),
            ),
        ),
    ),
    Profile(
        words=("search", "index", "recommend", "query", "feed"),
        dashboard_panels="indexing lag, query latency percentiles, shard health",
        symptoms=(
            Symptom(
                "Stale results",
                "IndexLagHigh",
                "Documents take more than 15 minutes to become searchable; the indexer's lag grows while its "
                "error count stays flat, a sign of a slow bulk request.",
                "Restart the indexer with a smaller batch (`{name}.bulk_size=200`); if a shard is red, "
                "reroute it before restarting.",
                (
                    "new items don't show up in {name} for ages",
                    "{name} keeps returning outdated stuff that was changed long ago",
                ),
            ),
            Symptom(
                "Query timeouts",
                "QueryLatencyHigh",
                "p99 query latency above 800 ms with timeouts on wildcard and deep-pagination queries.",
                "Turn on the `{name}.block_expensive_queries` guard and add a replica to the hot shard.",
                (
                    "{name} lookups hang and then fail",
                    "searching in {name} is painfully slow for some queries",
                ),
            ),
        ),
    ),
    Profile(
        words=("cache", "redis", "cdn", "memcache"),
        dashboard_panels="hit ratio, evictions, memory, origin request rate",
        symptoms=(
            Symptom(
                "Hit ratio drop",
                "CacheHitRatioLow",
                "The hit ratio falls under 80% and origin traffic doubles; most often a key format or TTL "
                "change in a recent deploy.",
                "Roll back the change that altered keys or TTLs; warm the hot keys with `cachectl warm "
                "{name} --top 10000` before re-enabling traffic.",
                (
                    "{name} misses constantly and the backends behind it are getting hammered",
                    "origin load doubled, {name} doesn't seem to be keeping anything",
                ),
            ),
            Symptom(
                "Memory evictions",
                "CacheEvictions",
                "Evictions above 1,000 per second with memory at the limit; large values crowd out hot keys.",
                "Find big keys with `cachectl bigkeys {name}`, cap value size, and add a shard.",
                (
                    "{name} is throwing entries away as fast as we put them in",
                    "{name} memory is full and keys vanish",
                ),
            ),
        ),
    ),
    Profile(
        words=(),
        dashboard_panels="request rate, error rate, p99 latency, CPU and memory per pod, restarts",
        symptoms=(
            Symptom(
                "Elevated error rate",
                "HighErrorRate",
                "More than 2% of requests return 5xx for 5 minutes; upstream timeouts or a bad deploy are the "
                "usual causes. Check the last deploy first.",
                "Roll back the latest release with `deployctl rollback {name}`; if an upstream is failing, "
                "serve cached responses with `{name}.serve_stale=true`.",
                (
                    "{name} is throwing a bunch of server errors at callers",
                    "lots of 502s and 503s coming back from {name}",
                ),
            ),
            Symptom(
                "Pods restarting",
                "PodCrashLooping",
                "Pods restart more than 3 times in 10 minutes; OOMKilled in the pod status means the memory "
                "limit is too low or a request leaks memory.",
                "Raise the memory limit one step in `deploy/{name}/values.yaml`, then look for a change that "
                "loads more data per request; keep at least 3 replicas while investigating.",
                (
                    "{name} containers keep dying and coming back",
                    "{name} gets killed for running out of memory",
                ),
            ),
        ),
    ),
)

GENERAL_PAGES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "oncall.md": (
        "On-call guide",
        """\
## Paging and escalation
The primary on-call acknowledges a page within 5 minutes. If the primary does not
acknowledge, the page escalates automatically to the secondary after 10 minutes; page
the incident commander rotation (`ic-primary`) directly for SEV1.

## Severity levels
- SEV1: customer-facing outage or data loss; incident commander required, status page update within 15 minutes.
- SEV2: degraded service for a subset of customers; owning team leads.
- SEV3: internal impact only; handle in working hours.

## Handoff
At the end of a shift write the handoff note in #oncall-handoff: open incidents, silenced
alerts and anything you promised to follow up.
""",
        (
            "the main person on call isn't answering the page, who's next?",
            "how bad does it have to be before we call it a SEV1?",
            "what should I write down for the next person when my shift ends?",
        ),
    ),
    "deploys/rollback.md": (
        "Rolling back a deploy",
        """\
## When to roll back
Roll back first and investigate second when an alert starts within an hour of a deploy.

## How
Run `deployctl rollback SERVICE --to PREVIOUS_RELEASE`; the previous release is listed by
`deployctl history SERVICE`. Database migrations are not reverted by a rollback: check the
release notes for a down-migration before rolling back across one.

## Canary aborts
A canary that breaches its error budget is aborted with `deployctl canary abort SERVICE`.

## Deploy freeze
Announce a freeze in #deploys and set `deployctl freeze --reason INCIDENT` so no other team ships while you investigate.
""",
        (
            "how do I put the previous version back on production?",
            "can I stop other teams from shipping while we look into this?",
            "the canary is looking bad, how do I kill it?",
        ),
    ),
    "incident-communication.md": (
        "Incident communication",
        """\
## Status page
For SEV1 and customer-visible SEV2 the incident commander posts on the status page within
15 minutes and every 30 minutes after, even if nothing changed.

## Customer support
Post a short summary in #support-escalations with the affected features and a workaround;
support answers tickets from it.

## Internal updates
Keep one thread in the incident channel with the current state, the next step and who owns it.
""",
        (
            "where do we tell customers that things are broken?",
            "how often am I supposed to post updates while this is ongoing?",
            "what do I give the support team so they can answer tickets?",
        ),
    ),
    "feature-flags.md": (
        "Feature flags and kill switches",
        """\
## Kill switches
Every risky feature ships behind a flag. Turn it off with `flagctl set FLAG false --env prod`;
the change reaches every pod within 30 seconds, no deploy needed.

## Who can change flags
The owning team and the on-call incident commander can change production flags; every
change is logged with the reason in #flag-changes.
""",
        (
            "how do I switch off a feature right now without shipping code?",
            "am I allowed to flip a production toggle during an incident?",
        ),
    ),
    "database-migrations.md": (
        "Database migrations",
        """\
## Locks
Migrations that rewrite a large table take an exclusive lock. Always set `lock_timeout = '5s'`
and create indexes `CONCURRENTLY`. If a migration blocks traffic, cancel it with
`pg_cancel_backend(pid)` and retry off-peak.

## Backfills
Backfill in batches of at most 10,000 rows with a pause between batches, and watch replica lag
while it runs.
""",
        (
            "a schema change is blocking writes on a huge table, what do I do?",
            "what's the safe way to fill in a new column for millions of rows?",
        ),
    ),
}


def write_demo_wiki(
    directory: Path, services: list[dict[str, Any]], postmortems: list[dict[str, Any]], seed: int = 0
) -> Path:
    """Write the wiki under ``directory`` and return the path of its ``queries.jsonl``."""
    rng = random.Random(seed)
    questions: dict[str, list[str]] = {}
    dependents = _dependents(services)
    for service in services:
        profile = profile_for(service)
        runbook = f"services/{service['name']}/runbook.md"
        overview = f"services/{service['name']}/overview.md"
        _write(directory / runbook, _runbook(service, profile))
        _write(directory / overview, _overview(service, dependents.get(service["name"], [])))
        questions[runbook] = _runbook_questions(service, profile)
        questions[overview] = _overview_questions(service)
    for postmortem in postmortems:
        page = f"postmortems/{postmortem['started_at'][:10]}-{_slug(postmortem['incident_id'])}.md"
        _write(directory / page, _postmortem(postmortem))
        questions[page] = _postmortem_questions(postmortem)
    for page, (title, body, asked) in GENERAL_PAGES.items():
        _write(directory / page, f"---\ntitle: {title}\ntype: page\n---\n# {title}\n\n{body}")
        questions[page] = list(asked)
    path = directory / "queries.jsonl"
    path.write_text(
        "".join(json.dumps({"question": q, "page": p}) + "\n" for p, q in _round_robin(questions, rng))
    )
    return path


def profile_for(service: dict[str, Any]) -> Profile:
    """The profile named by the service's name, else by the earliest telling word of its description."""
    for text in (service["name"], str(service.get("description", ""))):
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            for profile in PROFILES:
                if any(word.startswith(prefix) for prefix in profile.words):
                    return profile
    return PROFILES[-1]


def _runbook(service: dict[str, Any], profile: Profile) -> str:
    name, owner = service["name"], service["owner"]
    prefix = _camel(name)
    lines = [
        "---",
        f'title: "Runbook: {name}"',
        "type: runbook",
        f"services: [{name}]",
        "---",
        f"# Runbook: {name}",
        "",
        f"{service.get('description', '').rstrip('.')}. Paged team: {owner}.",
        "",
        "## Symptoms",
    ]
    for symptom in profile.symptoms:
        lines += ["", f"### {symptom.heading}", f"Alert `{prefix}{symptom.alert}`. {symptom.signal}"]
    lines += [
        "",
        "## Dashboards",
        f'Grafana board "{name} / overview" shows {profile.dashboard_panels}. Logs: '
        f"`service:{name} level:error` in the log explorer; traces filtered on `svc={name}`.",
        "",
        "## Mitigation",
    ]
    for symptom in profile.symptoms:
        lines += ["", f"### {symptom.heading}", symptom.mitigation.format(name=name)]
    lines += [
        "",
        "## Escalation",
        f"Escalate to the {owner} secondary on-call after 30 minutes without progress.",
        "",
    ]
    return "\n".join(lines)


def _runbook_questions(service: dict[str, Any], profile: Profile) -> list[str]:
    name = service["name"]
    asked = [question.format(name=name) for symptom in profile.symptoms for question in symptom.asked_as]
    asked.append(f"got paged for {_camel(name)}{profile.symptoms[0].alert}, what now?")
    asked.append(f"where can I see graphs and logs for {name}?")
    return asked


def _overview(service: dict[str, Any], dependents: list[str]) -> str:
    name, owner = service["name"], service["owner"]
    depends_on = service.get("depends_on") or []
    calls = ", ".join(depends_on) if depends_on else "nothing inside the platform"
    called_by = ", ".join(dependents) if dependents else "external clients only"
    return f"""---
title: "{name} service"
type: service
services: [{name}]
---
# {name} service

{service.get('description', '').rstrip('.')}.

## Ownership
Owned by the {owner} team; questions go to #team-{owner}, pages to the {owner}-primary rotation.

## Dependencies
Calls: {calls}.
Called by: {called_by}.

## Deployment
Code lives under `services/{name}/` in the monorepo. Every merge to main ships through the
canary stage to production within about 40 minutes; configuration is in `deploy/{name}/values.yaml`.
"""


def _overview_questions(service: dict[str, Any]) -> list[str]:
    name = service["name"]
    asked = [f"which team is responsible for {name}?", f"where does the code for {name} live and how does it get shipped?"]
    if service.get("depends_on"):
        asked.append(f"what other systems does {name} rely on?")
    return asked


def _postmortem(postmortem: dict[str, Any]) -> str:
    started = datetime.fromisoformat(postmortem["started_at"].replace("Z", "+00:00"))
    service, change = postmortem["service"], postmortem["root_cause_change_id"]
    return f"""---
title: {json.dumps("Postmortem: " + postmortem['title'])}
type: postmortem
services: [{service}]
incident: {json.dumps(postmortem['incident_id'])}
started_at: {postmortem['started_at']}
root_cause_change: {json.dumps(change)}
---
# Postmortem: {postmortem['title']}

## Summary
On {started:%B} {started.day}, {started:%Y} at {started:%H:%M} UTC, {service}: {postmortem['symptom'].rstrip('.')}.
Incident {postmortem['incident_id']}.

## Timeline
- {started:%H:%M} first alert for {service}; the on-call acknowledged within minutes.
- +25 min the suspect change was identified from the deploy log.
- +40 min the change was rolled back and the error rate returned to normal.

## Root cause
Change `{change}` ("{postmortem['root_cause_title']}") landed shortly before the incident began.

## Action items
- Add a canary check that catches this failure before full rollout.
- Add a regression test for the code path the change touched.
"""


def _postmortem_questions(postmortem: dict[str, Any]) -> list[str]:
    started = datetime.fromisoformat(postmortem["started_at"].replace("Z", "+00:00"))
    symptom = postmortem["symptom"].rstrip(".").lower()
    return [
        f"has {postmortem['service']} had this before: {symptom}?",
        f"what caused {postmortem['incident_id']}?",
        f"what went wrong with {postmortem['service']} on {started:%B} {started.day}?",
    ]


def _round_robin(questions: dict[str, list[str]], rng: random.Random) -> list[tuple[str, str]]:
    """Take questions page by page so every page is asked about before any page is asked twice.

    At least 40 questions, and about two per page on a larger wiki.
    """
    pools = {page: rng.sample(asked, len(asked)) for page, asked in questions.items()}
    target = max(40, 2 * len(pools))
    chosen: list[tuple[str, str]] = []
    while len(chosen) < target and any(pools.values()):
        for page, pool in pools.items():
            if pool and len(chosen) < target:
                chosen.append((page, pool.pop()))
    return chosen


def _dependents(services: list[dict[str, Any]]) -> dict[str, list[str]]:
    dependents: dict[str, list[str]] = {}
    for service in services:
        for dependency in service.get("depends_on") or []:
            dependents.setdefault(dependency, []).append(service["name"])
    return dependents


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", name) if part)


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "-", text.lower()).strip("-")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
