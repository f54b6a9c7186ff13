"""Load and fault tests of the production stack, run as processes on this machine, on loopback only.

Starts what deploy/compose.yml runs (two ``culprit serve --no-scheduler``
replicas, a scheduler replica, PostgreSQL, ``chroma run``, vLLM) with the
local PostgreSQL, the CPU vLLM serving the tiny test model and the fake Slack
Web API (benchmarks/stack_processes.py), seeded with the demo organisation.
The harness is the load balancer: it round-robins requests over the replicas
and retries the next one when a connection cannot be made.

Phases (each a bounded burst, all at once):
- ``POST /reports``: N batches of M reports; goal every report stored once, p99 < 1 s;
- signed ``/rca`` commands: goal every ack < 3 s, every answer posted once;
- ``app_mention`` events: one placeholder and one answer each;
- feedback clicks on the suggestions posted: one stored vote per (suggestion, person).

Faults (``--fault``, repeatable): ``replica`` stops replica 1 mid-load
(``--hard-stop`` kills it instead), ``vllm`` stops vLLM mid-load (answers go on
with the local judge, marked as such), ``postgres`` restarts the PostgreSQL
cluster mid-load (requests fail cleanly, then succeed; the cluster is started
again on exit whatever happens), ``scheduler`` kills the scheduler while it
posts the weekly digest and restarts it (the digest is posted once).

Checks count rows in PostgreSQL and posts in the fake Slack: no report,
suggestion, vote or answer lost or duplicated.

    .venv/bin/python benchmarks/stack.py [--batches 200] [--batch-size 50] [--rca 50]
        [--mentions 10] [--clicks 60] [--fault replica --fault vllm --fault postgres --fault scheduler]
        [--no-vllm] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"})

import httpx  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from benchmarks.slack_ack import demo_questions, percentile  # noqa: E402
from benchmarks.stack_processes import (  # noqa: E402
    DIGEST_CHANNEL,
    INCIDENT_CHANNEL,
    REPORTS_TOKEN,
    Stack,
    seed,
    wait_until,
)
from bot.incident_request import incident_id_for  # noqa: E402
from tests.bot.fake_slack import SlackCall  # noqa: E402
from tests.bot.slack_requests import SlackSender  # noqa: E402

RETRY_PAUSE_S = 0.5
MAX_ATTEMPTS = 60  # a retried report batch gives up after about 30 s of failures
ANSWER_WAIT_S = 900
DIGEST_CLAIMS = "FROM claims WHERE scope = 'weekly_digest' AND key LIKE '%:' || :channel"  # keys are <week>:<channel>


class SignedRequests(SlackSender):
    """Slack's own request shapes and signatures (tests/bot/slack_requests.py), built but not sent."""

    def __init__(self) -> None:
        super().__init__("http://unused")
        self.http.close()

    def post(self, body: str, content_type: str, **options: Any) -> tuple[bytes, dict[str, str]]:  # type: ignore[override]
        timestamp = str(int(time.time()))
        signature = self.sign(timestamp, body)
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
        return body.encode(), {**headers, **(options.get("headers") or {})}

    def sign(self, timestamp: str, body: str) -> str:
        from slack_sdk.signature import SignatureVerifier

        return SignatureVerifier(self.secret).generate_signature(timestamp=timestamp, body=body)


@dataclass
class Outcome:
    """One logical request: its final status, seconds from the first try to the answer, and tries."""

    status: int
    seconds: float
    attempts: int
    body: Any = None


@dataclass
class Balancer:
    """Round-robin over the replicas; a refused connection goes to the next one, as nginx does."""

    urls: list[str]
    client: httpx.AsyncClient
    _turn: itertools.count = field(default_factory=itertools.count)
    statuses: Counter[str] = field(default_factory=Counter)

    async def post(
        self, path: str, content: bytes, headers: dict[str, str], retry_server_errors: bool = False
    ) -> Outcome:
        """Send until answered. A request that got no response is sent again, as Slack does
        (with ``X-Slack-Retry-Num``; culprit drops a retry it already handled)."""
        started = time.perf_counter()
        retries = 0
        for attempt in range(1, MAX_ATTEMPTS + 1):
            url = self.urls[next(self._turn) % len(self.urls)]
            sent = {**headers, "X-Slack-Retry-Num": str(retries), "X-Slack-Retry-Reason": "http_error"} if retries else headers
            try:
                response = await self.client.post(url + path, content=content, headers=sent)
            except httpx.ConnectError:
                self.statuses["connect error"] += 1
                continue
            except httpx.TransportError as error:  # no response: a closed keep-alive, or the replica went away
                self.statuses[type(error).__name__] += 1
                retries += 1
                await asyncio.sleep(RETRY_PAUSE_S)
                continue
            self.statuses[str(response.status_code)] += 1
            if response.status_code >= 500 and retry_server_errors:
                await asyncio.sleep(RETRY_PAUSE_S)
                continue
            body = response.json() if "json" in response.headers.get("content-type", "") else response.text
            return Outcome(response.status_code, time.perf_counter() - started, attempt, body)
        return Outcome(0, time.perf_counter() - started, MAX_ATTEMPTS)


def latency_summary(outcomes: list[Outcome], wall_s: float) -> dict[str, Any]:
    seconds = [outcome.seconds for outcome in outcomes] or [0.0]
    return {
        "requests": len(outcomes),
        "throughput_per_s": round(len(outcomes) / wall_s, 1) if wall_s else None,
        "p50_s": round(percentile(seconds, 50), 3),
        "p95_s": round(percentile(seconds, 95), 3),
        "p99_s": round(percentile(seconds, 99), 3),
        "max_s": round(max(seconds), 3),
        "retried": sum(outcome.attempts > 1 for outcome in outcomes),
        "failed": sum(outcome.status != 200 for outcome in outcomes),
    }


class Harness:
    """Drives one running stack and checks what it stored and posted."""

    def __init__(self, stack: Stack, run_id: str) -> None:
        self.stack = stack
        self.run_id = run_id
        self.slack_requests = SignedRequests()
        self.reports_sent: set[str] = set()
        self.rca_markers: list[str] = []
        self.engine = create_engine(stack.database_url, pool_pre_ping=True)
        self._batches = itertools.count()

    def balancer(self, client: httpx.AsyncClient) -> Balancer:
        return Balancer([replica.url for replica in self.stack.replicas], client)

    # ---- load ------------------------------------------------------------------

    async def warm_up(self, client: httpx.AsyncClient) -> None:
        """One small report batch per replica, as a replica in service has had: models loaded, pools open."""
        headers = {"Authorization": f"Bearer {REPORTS_TOKEN}", "Content-Type": "application/json"}
        for number, replica in enumerate(self.stack.replicas):
            body = json.dumps([{"id": f"warm-{self.run_id}-{number}", "text": f"warm-up report {self.run_id} {number}"}])
            response = await client.post(f"{replica.url}/reports", content=body.encode(), headers=headers)
            response.raise_for_status()

    def report_batch(self, size: int) -> bytes:
        number = next(self._batches)
        reports = []
        for index in range(size):
            report_id = f"{self.run_id}-{number}-{index}"
            self.reports_sent.add(report_id)
            reports.append({"id": report_id, "text": f"Checkout button does nothing after coupon (run {self.run_id}, batch {number}, report {index})"})
        return json.dumps(reports).encode()

    async def post_reports(self, balancer: Balancer, batches: int, size: int) -> list[Outcome]:
        headers = {"Authorization": f"Bearer {REPORTS_TOKEN}", "Content-Type": "application/json"}
        bodies = [self.report_batch(size) for _ in range(batches)]
        return list(await asyncio.gather(*(balancer.post("/reports", body, headers, retry_server_errors=True) for body in bodies)))

    async def send_rca(self, balancer: Balancer, count: int) -> list[Outcome]:
        questions, _culprits = demo_questions(count)
        requests = []
        for number, question in enumerate(questions):
            trigger_id = f"{self.run_id}-rca-{len(self.rca_markers)}"
            self.rca_markers.append(incident_id_for(trigger_id))
            requests.append(self.slack_requests.command(question, user=f"U{self.run_id}{number}".upper(), trigger_id=trigger_id))
        return list(await asyncio.gather(*(balancer.post("/slack/events", body, headers) for body, headers in requests)))

    async def send_mentions(self, balancer: Balancer, count: int) -> tuple[list[Outcome], list[str]]:
        built = [
            self.slack_requests.mention(f"what changed before checkout started failing? (mention {number})", user=f"UMENTION{number}")
            for number in range(count)
        ]
        outcomes = await asyncio.gather(*(balancer.post("/slack/events", body, headers) for (body, headers), _ts in built))
        return list(outcomes), [ts for _request, ts in built]

    async def click_feedback(self, balancer: Balancer, clicks: int) -> tuple[list[Outcome], set[tuple[int, str]]]:
        answers = [call for call in self.answer_posts() if feedback_values(call)]
        targets = [(call, value) for call in answers for value in feedback_values(call)]
        if not targets:
            return [], set()
        requests, expected = [], set()
        for number in range(clicks):
            call, value = targets[number % len(targets)]
            user = f"UVOTER{number % 7}"
            expected.add((int(value), user))
            message = {"ts": call.response.get("ts"), "text": call.args.get("text", ""), "blocks": call.args.get("blocks")}
            action = "feedback_up" if number % 3 else "feedback_down"
            requests.append(self.slack_requests.click(action, value, user=user, channel=INCIDENT_CHANNEL, message=message))
        outcomes = await asyncio.gather(*(balancer.post("/slack/events", body, headers) for body, headers in requests))
        return list(outcomes), expected

    # ---- what Slack saw ------------------------------------------------------------

    def answer_posts(self) -> list[SlackCall]:
        assert self.stack.slack is not None
        return [
            call for call in self.stack.slack.calls
            if call.method in {"chat.postMessage", "response_url"} and "Incident:" in json.dumps(call.args.get("blocks") or [])
        ]

    def answers_by_marker(self) -> Counter[str]:
        posted: Counter[str] = Counter()
        for call in self.stack.slack.calls if self.stack.slack else []:
            if call.method not in {"chat.postMessage", "response_url"}:
                continue
            blob = json.dumps(call.args.get("blocks") or []) + call.args.get("text", "")
            for marker in self.rca_markers:
                if marker in blob:
                    posted[marker] += 1
        return posted

    async def wait_for_answers(self, markers: list[str], timeout_s: float = ANSWER_WAIT_S) -> float:
        """Seconds until every marker was answered (or the time-out: then some are reported missing)."""
        answered = await poll(lambda: sum(self.answers_by_marker()[m] > 0 for m in markers), len(markers), "answers", timeout_s, self.stack.say)
        await asyncio.sleep(2.0)  # a duplicate would arrive now
        return answered

    def answer_check(self, markers: list[str]) -> dict[str, Any]:
        posted = self.answers_by_marker()
        texts = [call.args.get("text", "") + json.dumps(call.args.get("blocks") or []) for call in self.stack.slack.calls if any(m in json.dumps(call.args) for m in markers)]  # type: ignore[union-attr]
        return {
            "asked": len(markers),
            "answered_once": sum(posted[m] == 1 for m in markers),
            "missing": sum(posted[m] == 0 for m in markers),
            "duplicated": sum(posted[m] > 1 for m in markers),
            "judged_by_llm": sum("llm:" in t and "LLM fallback" not in t for t in texts),
            "llm_fallback_marked": sum("LLM fallback" in t for t in texts),
            "timed_out_or_failed": sum(("timed out" in t) or ("investigation failed" in t) or ("can't reach" in t) for t in texts),
        }

    def mention_check(self, thread_ts: list[str]) -> dict[str, Any]:
        calls = self.stack.slack.calls  # type: ignore[union-attr]
        placeholders = {ts: [c for c in calls if c.method == "chat.postMessage" and c.args.get("thread_ts") == ts] for ts in thread_ts}
        updates = Counter(c.args.get("ts") for c in calls if c.method == "chat.update")
        placeholder_ts = [p[0].response.get("ts") for p in placeholders.values() if len(p) == 1]
        return {
            "placeholder_once": sum(len(p) == 1 for p in placeholders.values()),
            "answered_once": sum(updates[ts] == 1 for ts in placeholder_ts),
            "missing": len(thread_ts) - sum(updates[ts] >= 1 for ts in placeholder_ts),
            "duplicated": sum(len(p) > 1 for p in placeholders.values()) + sum(updates[ts] > 1 for ts in placeholder_ts),
        }

    # ---- what PostgreSQL holds ---------------------------------------------------------

    def sql(self, statement: str, **params: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(statement), params))

    def report_check(self) -> dict[str, int]:
        stored = {row[0] for row in self.sql("SELECT id FROM bug_reports WHERE id LIKE :prefix", prefix=f"{self.run_id}-%")}
        rows = self.sql("SELECT count(*) FROM bug_reports WHERE id LIKE :prefix", prefix=f"{self.run_id}-%")[0][0]
        return {"sent": len(self.reports_sent), "stored": rows, "lost": len(self.reports_sent - stored), "duplicated": rows - len(stored)}

    def suggestion_check(self) -> dict[str, int]:
        posted = {int(value) for call in self.answer_posts() for value in feedback_values(call)}
        rows = self.sql(
            "SELECT s.id, s.incident_id, s.change_id FROM suggestions s WHERE s.incident_id = ANY(:ids)",
            ids=self.rca_markers,
        )
        stored = {row[0] for row in rows}
        per_change = Counter((row[1], row[2]) for row in rows)
        return {
            "posted": len(posted),
            "stored": len(stored),
            "posted_not_stored": len(posted - stored),
            "duplicated": sum(count - 1 for count in per_change.values() if count > 1),
        }

    def feedback_check(self, expected: set[tuple[int, str]]) -> dict[str, int]:
        if not expected:
            return {"expected": 0, "stored": 0, "lost": 0, "duplicated": 0}
        rows = self.sql(
            "SELECT suggestion_id, user_id FROM feedback WHERE suggestion_id = ANY(:ids)",
            ids=sorted({suggestion for suggestion, _ in expected}),
        )
        stored = Counter((row[0], row[1]) for row in rows)
        return {
            "expected": len(expected),
            "stored": sum(stored.values()),
            "lost": len(expected - set(stored)),
            "duplicated": sum(count - 1 for count in stored.values() if count > 1),
        }


async def poll(count: Callable[[], int], goal: int, what: str, timeout_s: float, say: Callable[[str], None]) -> float:
    """Await ``count() >= goal``, saying how far it got every 15 s; returns the seconds it took."""
    started = last_said = time.monotonic()
    while (done := count()) < goal and time.monotonic() - started < timeout_s:
        if time.monotonic() - last_said > 15:
            say(f"  {what}: {done}/{goal}")
            last_said = time.monotonic()
        await asyncio.sleep(0.5)
    return time.monotonic() - started


def feedback_values(call: SlackCall) -> list[str]:
    return [
        element["value"]
        for block in call.args.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("action_id") == "feedback_up"
    ]


# ---- phases ---------------------------------------------------------------------------


async def timed(work: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await work
    return result, time.perf_counter() - started


async def load_phases(harness: Harness, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=2.0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        balancer = harness.balancer(client)
        await harness.warm_up(client)
        harness.stack.say(f"POST /reports: {args.batches} batches of {args.batch_size} at once")
        outcomes, wall = await timed(harness.post_reports(balancer, args.batches, args.batch_size))
        results["reports"] = {**latency_summary(outcomes, wall), "reports_per_s": round(args.batches * args.batch_size / wall, 1), **harness.report_check()}

        harness.stack.say(f"/rca: {args.rca} signed commands at once over {len(balancer.urls)} replicas")
        first = len(harness.rca_markers)
        outcomes, wall = await timed(harness.send_rca(balancer, args.rca))
        markers = harness.rca_markers[first:]
        answered_in = await harness.wait_for_answers(markers)
        results["rca"] = {
            **latency_summary(outcomes, wall),
            "acks_over_3s": sum(outcome.seconds >= 3 for outcome in outcomes),
            "all_answers_within_s": round(answered_in, 1),
            **harness.answer_check(markers),
        }

        if args.mentions:
            harness.stack.say(f"mentions: {args.mentions} app_mention events at once")
            (outcomes, thread_ts), wall = await timed(harness.send_mentions(balancer, args.mentions))
            await poll(
                lambda: args.mentions - harness.mention_check(thread_ts)["missing"], args.mentions,
                "mention answers", ANSWER_WAIT_S, harness.stack.say,
            )
            await asyncio.sleep(2.0)
            results["mentions"] = {**latency_summary(outcomes, wall), **harness.mention_check(thread_ts)}

        harness.stack.say(f"feedback: {args.clicks} clicks at once")
        (outcomes, expected), wall = await timed(harness.click_feedback(balancer, args.clicks))
        await asyncio.sleep(1.0)
        results["feedback"] = {**latency_summary(outcomes, wall), **harness.feedback_check(expected)}
        results["suggestions"] = harness.suggestion_check()
        results["load_balancer"] = dict(balancer.statuses)
    return results


async def replica_fault(harness: Harness, args: argparse.Namespace) -> dict[str, Any]:
    """Stop replica 1 while reports and /rca are in flight; everything lands on replica 2."""
    stack = harness.stack
    victim = stack.replicas[0]
    reports_before = set(harness.reports_sent)
    first = len(harness.rca_markers)
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=1000, keepalive_expiry=2.0)) as client:
        balancer = harness.balancer(client)
        reports = asyncio.create_task(harness.post_reports(balancer, args.batches // 2, args.batch_size))
        rca = asyncio.create_task(harness.send_rca(balancer, max(10, args.rca // 2)))
        await asyncio.sleep(args.fault_after_s)
        stack.say(f"fault: {'killing' if args.hard_stop else 'stopping'} {victim.name} mid-load")
        await asyncio.to_thread(stack.stop_replica, victim, args.hard_stop)
        report_outcomes = await reports
        rca_outcomes = await rca
    markers = harness.rca_markers[first:]
    await harness.wait_for_answers(markers, 300)
    sent_now = harness.reports_sent - reports_before
    stack.say(f"restarting {victim.name}")
    await asyncio.to_thread(stack.start_replica, victim)
    return {
        "stop": "SIGKILL" if args.hard_stop else "SIGTERM",
        "reports": {**latency_summary(report_outcomes, 0), **_reports_subset(harness, sent_now)},
        "rca": {**latency_summary(rca_outcomes, 0), **harness.answer_check(markers)},
        "load_balancer": dict(balancer.statuses),
    }


def _reports_subset(harness: Harness, ids: set[str]) -> dict[str, int]:
    stored = {row[0] for row in harness.sql("SELECT id FROM bug_reports WHERE id = ANY(:ids)", ids=sorted(ids))}
    return {"sent": len(ids), "stored": len(stored), "lost": len(ids - stored)}


async def vllm_fault(harness: Harness, args: argparse.Namespace) -> dict[str, Any]:
    """Stop vLLM while /rca commands are being answered; the local judge answers the rest, marked."""
    stack = harness.stack
    if stack.vllm is None:
        return {"skipped": "vLLM not started (--no-vllm)"}
    first = len(harness.rca_markers)
    async with httpx.AsyncClient(timeout=120) as client:
        balancer = harness.balancer(client)
        rca = asyncio.create_task(harness.send_rca(balancer, max(10, args.rca // 2)))
        await asyncio.sleep(args.fault_after_s)
        stack.say("fault: stopping vLLM mid-load")
        await asyncio.to_thread(stack.vllm.stop)
        outcomes = await rca
    markers = harness.rca_markers[first:]
    await harness.wait_for_answers(markers, 600)
    return {"rca": {**latency_summary(outcomes, 0), **harness.answer_check(markers)}}


def postgres_running() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432"], capture_output=True).returncode == 0


def restart_postgres(action: str = "restart") -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action], check=False, capture_output=True, timeout=120)


async def postgres_fault(harness: Harness, args: argparse.Namespace) -> dict[str, Any]:
    """Restart PostgreSQL under a report burst: failures are clean 5xx, retries then store everything once."""
    stack = harness.stack
    reports_before = set(harness.reports_sent)
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=1000, keepalive_expiry=2.0)) as client:
        balancer = harness.balancer(client)
        reports = asyncio.create_task(harness.post_reports(balancer, args.batches // 2, args.batch_size))
        await asyncio.sleep(args.fault_after_s)
        stack.say("fault: restarting PostgreSQL mid-load")
        started = time.monotonic()
        await asyncio.to_thread(restart_postgres)
        restart_s = time.monotonic() - started
        outcomes = await reports
        health = [await client.get(f"{replica.url}/healthz") for replica in stack.replicas]
    sent_now = harness.reports_sent - reports_before
    return {
        "restart_s": round(restart_s, 1),
        "reports": {**latency_summary(outcomes, 0), **_reports_subset(harness, sent_now)},
        "statuses_seen": dict(balancer.statuses),
        "healthz_after": [response.status_code for response in health],
    }


def scheduler_fault(harness: Harness) -> dict[str, Any]:
    """Kill the scheduler while it posts a digest, restart it: the digest is posted once, on recovery."""
    stack = harness.stack
    scheduler = stack.scheduler
    assert scheduler is not None and stack.slack is not None
    channel = f"{DIGEST_CHANNEL}-{harness.run_id}"
    stack.stop_replica(scheduler)
    stack.say(f"fault: scheduler restarted for a new digest channel {channel}; killing it mid-digest")
    stack.start_replica(scheduler, wait=False, digest_channel=channel)
    state = "not claimed"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and scheduler.running:
        rows = harness.sql(f"SELECT done_at {DIGEST_CLAIMS}", channel=channel)
        if rows:
            state = "claimed, not posted" if rows[0][0] is None else "already posted"
            break
        time.sleep(0.01)
    stack.stop_replica(scheduler, hard=True)
    posts_at_kill = len([c for c in stack.slack.calls if c.method == "chat.postMessage" and c.args.get("channel") == channel])
    stack.say(f"killed the scheduler ({state}); restarting it")
    restarted = time.monotonic()
    stack.start_replica(scheduler, digest_channel=channel)
    wait_until(
        lambda: harness.sql(f"SELECT done_at {DIGEST_CLAIMS} AND done_at IS NOT NULL", channel=channel),
        "the digest after recovery",
        300,
    )
    recovered_s = time.monotonic() - restarted
    time.sleep(2.0)
    posts = [c for c in stack.slack.calls if c.method == "chat.postMessage" and c.args.get("channel") == channel]
    return {
        "state_at_kill": state,
        "posts_at_kill": posts_at_kill,
        "digest_posts": len(posts),
        "posted_after_restart_s": round(recovered_s, 1),
        "claims": len(harness.sql(f"SELECT 1 {DIGEST_CLAIMS}", channel=channel)),
    }


# ---- the run ---------------------------------------------------------------------------


def run(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    report: dict[str, Any] = {"arguments": vars(args), "load_average_at_start": os.getloadavg()}
    report["seed"] = seed(say)
    workdir = Path(tempfile.mkdtemp(prefix="culprit-stack-"))
    stack = Stack(workdir, with_vllm=not args.no_vllm, progress=say, with_classifier=not args.no_classifier)
    run_id = f"s{int(time.time()) % 100000}"
    try:
        started = time.monotonic()
        stack.start(replicas=2)
        report["stack_start_s"] = round(time.monotonic() - started, 1)
        harness = Harness(stack, run_id)
        say("waiting for the scheduler's start-up digest")
        wait_until(lambda: harness.sql(f"SELECT 1 {DIGEST_CLAIMS} AND done_at IS NOT NULL", channel=DIGEST_CHANNEL), "start-up digest", 300)
        report["load"] = asyncio.run(load_phases(harness, args))
        report["load_average_after_load"] = os.getloadavg()
        faults: dict[str, Any] = {}
        for fault in args.fault:
            if fault == "replica":
                faults["replica"] = asyncio.run(replica_fault(harness, args))
            elif fault == "vllm":
                faults["vllm"] = asyncio.run(vllm_fault(harness, args))
            elif fault == "postgres":
                faults["postgres"] = asyncio.run(postgres_fault(harness, args))
            elif fault == "scheduler":
                faults["scheduler"] = scheduler_fault(harness)
        report["faults"] = faults
        report["startup_digest_posts"] = len([c for c in stack.slack.calls if c.method == "chat.postMessage" and c.args.get("channel") == DIGEST_CHANNEL])  # type: ignore[union-attr]
        report["all_reports"] = harness.report_check()
        report["goals"] = goals(report)
        harness.engine.dispose()
    finally:
        if not postgres_running():
            say("PostgreSQL is down: starting it again")
            restart_postgres("start")
        if args.keep_logs and stack.slack is not None:
            with (workdir / "logs" / "fake-slack.jsonl").open("w") as calls:
                for call in list(stack.slack.calls):
                    calls.write(json.dumps({"method": call.method, "at": call.at, "args": call.args, "response": call.response}, default=str) + "\n")
        stack.close()
        if args.keep_logs:
            report["logs"] = str(workdir / "logs")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return report


def goals(report: dict[str, Any]) -> dict[str, bool]:
    load = report["load"]
    checks = {
        "reports_stored_exactly_once": load["reports"]["lost"] == 0 and load["reports"]["duplicated"] == 0,
        "reports_p99_under_1s": load["reports"]["p99_s"] < 1.0,
        "rca_acks_under_3s": load["rca"]["acks_over_3s"] == 0 and load["rca"]["failed"] == 0,
        "rca_answers_posted_once": load["rca"]["missing"] == 0 and load["rca"]["duplicated"] == 0,
        "suggestions_consistent": load["suggestions"]["posted_not_stored"] == 0 and load["suggestions"]["duplicated"] == 0,
        "feedback_stored_once": load["feedback"]["lost"] == 0 and load["feedback"]["duplicated"] == 0,
    }
    faults = report["faults"]
    if "replica" in faults:
        checks["replica_fault_no_lost_writes"] = faults["replica"]["reports"]["lost"] == 0 and faults["replica"]["rca"]["missing"] == 0
    if "vllm" in faults and "rca" in faults["vllm"]:
        checks["vllm_fault_answers_continue_marked"] = faults["vllm"]["rca"]["missing"] == 0 and faults["vllm"]["rca"]["llm_fallback_marked"] > 0
    if "postgres" in faults:
        checks["postgres_fault_no_lost_writes"] = faults["postgres"]["reports"]["lost"] == 0
    if "scheduler" in faults:
        checks["scheduler_fault_digest_once"] = faults["scheduler"]["digest_posts"] == 1
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=200, help="concurrent POST /reports batches")
    parser.add_argument("--batch-size", type=int, default=50, help="reports per batch")
    parser.add_argument("--rca", type=int, default=50, help="concurrent /rca commands")
    parser.add_argument("--mentions", type=int, default=10, help="concurrent app_mention events")
    parser.add_argument("--clicks", type=int, default=60, help="concurrent feedback clicks")
    parser.add_argument("--fault", action="append", default=[], choices=["replica", "vllm", "postgres", "scheduler"])
    parser.add_argument("--fault-after-s", type=float, default=1.0, help="seconds into the burst to inject a fault")
    parser.add_argument("--hard-stop", action="store_true", help="SIGKILL the replica instead of SIGTERM")
    parser.add_argument("--no-vllm", action="store_true", help="local judge only; skip the CPU vLLM")
    parser.add_argument("--no-classifier", action="store_true", help="store reports unclassified (the storage path alone)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def say(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    report = run(args, say)
    print(json.dumps(report, indent=2, default=str))
    if not args.json:
        failed = [name for name, ok in report["goals"].items() if not ok]
        print("goals met" if not failed else f"goals missed: {', '.join(failed)}", file=sys.stderr)


if __name__ == "__main__":
    main()
