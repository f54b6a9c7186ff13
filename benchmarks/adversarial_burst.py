"""An adversarial burst against one replica: 200 signed ``/rca`` and 20 pathological 5 MiB ``POST /reports`` at once.

    .venv/bin/python benchmarks/adversarial_burst.py --demo DIR [--commands 200] [--reports 20]
        [--report-bytes 5242880] [--rate-limited 0,0.2] [--json]

Starts one replica the way ``culprit serve`` runs it (the Bolt app, the
server, the scheduled jobs, uvicorn; a subprocess) on a copy of a data
directory prepared by ``culprit demo``, against the fake Slack Web API from
the test suite (in this process). For each share of ``chat.postMessage``
calls the fake Slack answers 429 (``--rate-limited``), it sends every command
(each from its own user and channel), every report batch (one report of
``--report-bytes`` of text that once took quadratic time to redact) and polls
``/healthz`` all at once, then waits for the answers and prints:

- ack latency of ``/rca`` (p50 / p99 / max; issue 15's goal p99 < 3 s) and how
  many were acked "investigating" or "busy",
- ``/healthz`` latency during the burst (p50 / p99 / max; goal p99 < 0.5 s),
- ``POST /reports`` statuses and latency,
- messages posted per acked command (goal: exactly one each, the answer or a
  "timed out" / failure sentence) and none for a command refused as busy,
- the load average, since the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"})

import aiohttp  # noqa: E402
import httpx  # noqa: E402
from slack_sdk.signature import SignatureVerifier  # noqa: E402

from benchmarks.reports_burst import start_replica  # noqa: E402
from benchmarks.slack_ack import demo_questions, percentile  # noqa: E402
from benchmarks.stack_processes import wait_until  # noqa: E402
from tests.bot.fake_slack import FakeSlack, FakeSlackServer  # noqa: E402
from tests.bot.slack_requests import SIGNING_SECRET, SlackSender  # noqa: E402
from tests.vllm_server import free_port  # noqa: E402

REPORTS_TOKEN = "adversarial-token"
# Texts whose redaction was quadratic or worse before issue 15 (see benchmarks/redaction_speed.py).
PATHOLOGICAL = ["a.", "a@", "1.", "::", "4111 ", "a.a@1.::4111-"]
ANSWER_TIMEOUT_S = 1200


def replica_app() -> Any:
    """What the replica serves (uvicorn ``--factory``): ``culprit serve`` in HTTP mode, jobs included."""
    from bot.app import create_app
    from bot.cli.serve import start_jobs
    from bot.server import create_server
    from knowledge.config import get_settings
    from knowledge.db import migrate

    settings = get_settings()
    migrate(settings.resolved_database_url)
    bolt = create_app(settings, warm_up=True)
    start_jobs(settings, bolt.client)
    return create_server(bolt, settings)


def signed_command(sender: SlackSender, text: str, number: int, run: str) -> tuple[bytes, dict[str, str]]:
    """A ``/rca`` as Slack sends it, from its own user in its own channel (``CB<run><number>``)."""
    form = sender.command_payload(
        text, user=f"UB{number:04d}", channel=channel_of(run, number), channel_name=f"inc-bench-{number}",
        trigger_id=f"bench-{run}-{number}",
    )
    body = urlencode(form)
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }
    return body.encode(), headers


def channel_of(run: str, number: int) -> str:
    return f"CB{run}{number:04d}"


def report_body(run: str, number: int, size: int) -> bytes:
    """One report whose text fills the batch up to ``size`` bytes with a pathological pattern."""
    piece = PATHOLOGICAL[number % len(PATHOLOGICAL)]
    length = size - 200
    text = (piece * (length // len(piece) + 1))[:length]
    return json.dumps([{"id": f"adversarial-{run}-{number}", "text": text}]).encode()


async def burst(
    url: str, commands: list[tuple[bytes, dict[str, str]]], reports: list[bytes]
) -> dict[str, Any]:
    """Everything at once, plus ``/healthz`` polled every 50 ms until the last request is answered."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:

        # A request the server drops (connection reset) counts with status 0 rather than ending the run.
        async def command(body: bytes, headers: dict[str, str]) -> tuple[float, int, dict[str, Any]]:
            started = time.perf_counter()
            try:
                async with client.post(f"{url}/slack/events", data=body, headers=headers) as response:
                    payload = await response.read()
                    seconds = time.perf_counter() - started
                    return seconds, response.status, json.loads(payload) if response.status == 200 and payload else {}
            except aiohttp.ClientError:
                return time.perf_counter() - started, 0, {}

        async def report(body: bytes) -> tuple[float, int]:
            started = time.perf_counter()
            headers = {"Authorization": f"Bearer {REPORTS_TOKEN}", "Content-Type": "application/json"}
            try:
                async with client.post(f"{url}/reports", data=body, headers=headers) as response:
                    await response.read()
                    return time.perf_counter() - started, response.status
            except aiohttp.ClientError:
                return time.perf_counter() - started, 0

        health: list[tuple[float, int]] = []
        finished = asyncio.Event()

        async def poll_health() -> None:
            while not finished.is_set():
                started = time.perf_counter()
                try:
                    async with client.get(f"{url}/healthz") as response:
                        await response.read()
                        health.append((time.perf_counter() - started, response.status))
                except aiohttp.ClientError:
                    health.append((time.perf_counter() - started, 0))
                await asyncio.sleep(0.05)

        poller = asyncio.create_task(poll_health())
        await asyncio.sleep(0.2)  # a few readings before the burst
        started = time.perf_counter()
        results = await asyncio.gather(
            asyncio.gather(*(command(body, headers) for body, headers in commands)),
            asyncio.gather(*(report(body) for body in reports)),
        )
        wall = time.perf_counter() - started
        finished.set()
        await poller
    return {"commands": results[0], "reports": results[1], "health": health, "wall_s": wall}


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "p50": round(statistics.median(values), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3),
    }


def run_once(
    url: str, slack: FakeSlack, sender: SlackSender, questions: list[str], share: float, args: argparse.Namespace
) -> dict[str, Any]:
    run = f"{int(share * 100):02d}"
    slack.rate_limited_share["chat.postMessage"] = share
    commands = [signed_command(sender, questions[n % len(questions)], n, run) for n in range(args.commands)]
    reports = [report_body(run, n, args.report_bytes) for n in range(args.reports)]
    load_before = os.getloadavg()
    refused_before = len(slack.calls_to("rate_limited:chat.postMessage"))
    outcome = asyncio.run(burst(url, commands, reports))
    load_after = os.getloadavg()

    acks = [seconds for seconds, _, _ in outcome["commands"]]
    acked = [n for n, (_, status, body) in enumerate(outcome["commands"]) if status == 200 and body.get("response_type") == "in_channel"]
    busy = [n for n, (_, status, body) in enumerate(outcome["commands"]) if status == 200 and "can't take another" in body.get("text", "")]

    def posted(number: int) -> list[str]:
        channel = channel_of(run, number)
        return [call.args.get("text", "") for call in slack.calls_to("chat.postMessage") if call.args.get("channel") == channel]

    answered_started = time.monotonic()
    wait_until(lambda: all(posted(n) for n in acked), f"answers to {len(acked)} acked commands", ANSWER_TIMEOUT_S)
    all_answered_s = time.monotonic() - answered_started + outcome["wall_s"]
    time.sleep(5.0)  # a duplicate answer, or one for a command refused as busy, would arrive now
    texts = {n: posted(n) for n in range(args.commands)}
    kinds: Counter[str] = Counter()
    for n in acked:
        for text in texts[n]:
            kinds["timed out" if "timed out" in text else "failed" if "investigation failed" in text or "can't reach" in text else "answer"] += 1
    return {
        "rate_limited_share": share,
        "load_average_before": [round(value, 1) for value in load_before],
        "load_average_after": [round(value, 1) for value in load_after],
        "burst_wall_s": round(outcome["wall_s"], 2),
        "commands": {
            "sent": args.commands,
            "not_200": sum(status != 200 for _, status, _ in outcome["commands"]),
            "acked_investigating": len(acked),
            "acked_busy": len(busy),
            "ack_s": stats(acks),
        },
        "healthz_s": stats([seconds for seconds, _ in outcome["health"]]) | {
            "readings": len(outcome["health"]),
            "not_200": sum(status != 200 for _, status in outcome["health"]),
        },
        "reports": {
            "sent": args.reports,
            "bytes_each": args.report_bytes,
            "statuses": dict(Counter(status for _, status in outcome["reports"])),
            "latency_s": stats([seconds for seconds, _ in outcome["reports"]]),
        },
        "answers": {
            "messages_per_acked_command": sorted({len(texts[n]) for n in acked}),
            "messages_to_busy_commands": sum(len(texts[n]) for n in busy),
            "kinds": dict(kinds),
            "all_answered_s": round(all_answered_s, 1),
            "rate_limited_calls": len(slack.calls_to("rate_limited:chat.postMessage")) - refused_before,
        },
        "goals": {
            "ack_p99_under_3s": not acks or percentile(acks, 99) < 3,
            "healthz_p99_under_0_5s": percentile([s for s, _ in outcome["health"]], 99) < 0.5,
            "each_acked_command_answered_once": all(len(texts[n]) == 1 for n in acked),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", type=Path, required=True, help="data directory prepared by `culprit demo`")
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--reports", type=int, default=20)
    parser.add_argument("--report-bytes", type=int, default=5 * 1024 * 1024)
    parser.add_argument("--rate-limited", default="0,0.2", help="shares of chat.postMessage answered 429, one run each")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (args.demo / "culprit.db").exists():
        sys.exit(f"{args.demo} has no culprit.db: run `CULPRIT_DATA_DIR={args.demo} culprit demo` first")

    workdir = Path(tempfile.mkdtemp(prefix="culprit-adversarial-"))
    data_dir = workdir / "data"
    shutil.copytree(args.demo, data_dir, ignore=shutil.ignore_patterns("demo"))
    questions, _ = demo_questions(50)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    runs = []
    with FakeSlackServer(FakeSlack()) as slack:
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CULPRIT_", "SLACK_"))},
            "CULPRIT_DATA_DIR": str(data_dir),
            "CULPRIT_DATABASE_URL": f"sqlite:///{data_dir / 'culprit.db'}",
            "CULPRIT_REPORTS_TOKEN": REPORTS_TOKEN,
            "SLACK_BOT_TOKEN": "xoxb-adversarial",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "CULPRIT_SLACK_API_URL": slack.base_url + "api/",
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        }
        replica = start_replica(port, environment, workdir / "replica.log", "benchmarks.adversarial_burst:replica_app")
        sender = SlackSender(url, response_url=slack.base_url + "response/bench")
        try:
            wait_until(lambda: httpx.get(f"{url}/healthz").status_code == 200, "the replica", 300, replica)
            body, headers = signed_command(sender, questions[0], 0, "wu")  # warm-up: models loaded, one answer
            httpx.post(f"{url}/slack/events", content=body, headers=headers, timeout=60).raise_for_status()
            slack.wait_for(lambda call: call.method == "chat.postMessage" and call.args.get("channel") == channel_of("wu", 0), timeout=600)
            for share in [float(value) for value in args.rate_limited.split(",")]:
                runs.append(run_once(url, slack, sender, questions, share, args))
        finally:
            sender.close()
            replica.terminate()
            try:
                replica.wait(timeout=120)  # finishes what it acked first
            except subprocess.TimeoutExpired:
                replica.kill()
            log_tail = (workdir / "replica.log").read_text(errors="replace").splitlines()[-5:]
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps({"runs": runs, "replica_log_tail": log_tail}, indent=2))
        return
    for result in runs:
        c, h, r, a = result["commands"], result["healthz_s"], result["reports"], result["answers"]
        print(f"\nfake Slack rate-limits {result['rate_limited_share']:.0%} of chat.postMessage; "
              f"load average {result['load_average_before']} -> {result['load_average_after']}")
        ack = c["ack_s"] or {"p50": "-", "p99": "-", "max": "-"}
        print(f"/rca x{c['sent']}: ack p50 {ack['p50']} s  p99 {ack['p99']} s  max {ack['max']} s; "
              f"investigating {c['acked_investigating']}, busy {c['acked_busy']}, not 200: {c['not_200']}")
        print(f"/healthz during the burst: p50 {h['p50']} s  p99 {h['p99']} s  max {h['max']} s ({h['readings']} readings, {h['not_200']} not 200)")
        latency = r["latency_s"] or {"p50": "-", "max": "-"}
        print(f"POST /reports x{r['sent']} of {r['bytes_each']} bytes: statuses {r['statuses']}, "
              f"p50 {latency['p50']} s  max {latency['max']} s")
        print(f"messages per acked /rca: {a['messages_per_acked_command']} ({a['kinds']}), to busy ones: "
              f"{a['messages_to_busy_commands']}; all answered after {a['all_answered_s']} s; 429s given: {a['rate_limited_calls']}")
        print(f"goals: {result['goals']}")


if __name__ == "__main__":
    main()
