"""How fast culprit acks and answers ``/rca`` under a burst: the real server, Bolt and RCA on loopback.

Starts the bot (Starlette under uvicorn) against the fake Slack Web API from
the test suite, warms it with one request, then sends N signed ``/rca``
commands at once from N responders and reports:

- ack latency (HTTP response to Slack): p50 / p95 / p99 / max; goal p99 < 3 s,
- time to the full answer posted with ``chat.postMessage``: p50 / p95 / max;
  goal p95 < 5 s with the local judge on the demo data,
- answers posted per request (must be exactly one each).

Data: ``--demo DIR`` uses a data directory prepared by
``CULPRIT_DATA_DIR=DIR culprit demo`` (copied first, so the benchmark's
incidents never land in it) and asks about the demo's most recent incidents;
without it, a small store seeded like the tests.

    .venv/bin/python benchmarks/slack_ack.py [--requests 20] [--demo .culprit] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"})


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def demo_questions(count: int) -> tuple[list[str], list[list[str]]]:
    """The demo's most recent incidents as a responder would type them, and their culprits."""
    from knowledge.demo import generate_organisation

    recent = generate_organisation().incidents[-count:]
    questions = [
        f"{incident.text} service:{incident.service} at:{incident.started_at.isoformat().replace('+00:00', 'Z')}"
        for incident in recent
    ]
    return questions, [incident.culprits for incident in recent]


def seeded_questions(database_url: str, count: int) -> list[str]:
    from knowledge.db import migrate, utcnow
    from tests.bot.conftest import seed_changes

    migrate(database_url)
    seed_changes(database_url, utcnow())
    symptoms = ["card payments fail with 502", "checkout totals are wrong", "search results are empty", "logins fail"]
    return [f"{symptoms[n % len(symptoms)]} (burst {n})" for n in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--demo", type=Path, help="data directory prepared by `culprit demo`")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="culprit-bench-"))
    data_dir = workdir / "data"
    if args.demo:
        if not (args.demo / "culprit.db").exists():
            sys.exit(f"{args.demo} has no culprit.db: run `CULPRIT_DATA_DIR={args.demo} culprit demo` first")
        shutil.copytree(args.demo, data_dir, ignore=shutil.ignore_patterns("chroma", "demo"))
    data_dir.mkdir(exist_ok=True)
    database_url = f"sqlite:///{data_dir / 'culprit.db'}"
    for name in [name for name in os.environ if name.startswith(("SLACK_", "CULPRIT_"))]:
        del os.environ[name]
    os.environ["CULPRIT_DATA_DIR"] = str(data_dir)
    os.environ["CULPRIT_DATABASE_URL"] = database_url

    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    from bot.app import create_app
    from bot.incident_request import incident_id_for
    from bot.server import create_server
    from knowledge.config import get_settings
    from knowledge.db import migrate
    from tests.bot.fake_slack import FakeSlack, FakeSlackServer, SlackCall
    from tests.bot.live import LiveServer
    from tests.bot.slack_requests import SIGNING_SECRET, SlackSender

    if args.demo:
        questions, culprits = demo_questions(args.requests + 1)
    else:
        questions, culprits = seeded_questions(database_url, args.requests + 1), []
    migrate(database_url)
    fake = FakeSlackServer(FakeSlack(channel_names={"CINC1": "inc-checkout"}))
    with fake as slack:
        os.environ.update(
            {"SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SIGNING_SECRET, "CULPRIT_SLACK_API_URL": fake.api_url}
        )
        get_settings.cache_clear()
        settings = get_settings()
        with LiveServer(create_server(create_app(settings), settings)) as url:
            sender = SlackSender(url, response_url=fake.response_url("bench"))

            def answers_to(trigger_id: str) -> list[SlackCall]:
                marker = incident_id_for(trigger_id)
                return [
                    call
                    for call in slack.calls_to("chat.postMessage")
                    if marker in json.dumps(call.args.get("blocks") or []) or marker in call.args.get("text", "")
                ]

            def answered(trigger_id: str) -> list[float]:
                return [call.at for call in answers_to(trigger_id)]

            def ask(number: int) -> tuple[float, str, float]:
                trigger_id = f"bench-{number}-{time.time_ns()}"
                sent = time.time()
                response = sender.command(questions[number], user=f"UBENCH{number}", trigger_id=trigger_id)
                if response.status_code != 200 or response.json().get("response_type") != "in_channel":
                    raise RuntimeError(f"request {number} was not acked: {response.status_code} {response.text[:200]}")
                return time.time() - sent, trigger_id, sent

            warm_started = time.time()
            _, warm_trigger, _ = ask(args.requests)
            slack.wait_for(lambda call: bool(answered(warm_trigger)), timeout=300)
            warm_s = time.time() - warm_started
            before = len(slack.calls_to("chat.postMessage"))

            with ThreadPoolExecutor(max_workers=args.requests) as pool:
                results = list(pool.map(ask, range(args.requests)))
            slack.wait_for(lambda call: call.method == "chat.postMessage", count=before + args.requests, timeout=300)
            time.sleep(1.0)  # any duplicate answer would arrive now
            sender.close()

    acks = [ack for ack, _, _ in results]
    answers, posted_counts, confident, hits = [], [], 0, 0
    for number, (_, trigger_id, sent) in enumerate(results):
        posted = answers_to(trigger_id)
        posted_counts.append(len(posted))
        answers.append(min(call.at for call in posted) - sent)
        blocks = json.dumps(posted[0].args.get("blocks") or [])
        confident += '"feedback_up"' in blocks
        hits += bool(culprits) and any(f"`{culprit[:12]}`" in blocks for culprit in culprits[number])
    failed = sum("investigation failed" in call.args.get("text", "") or "timed out" in call.args.get("text", "") for call in slack.calls_to("chat.postMessage"))
    report = {
        "requests": args.requests,
        "data": "demo" if args.demo else "seeded",
        "warmup_answer_s": round(warm_s, 2),
        "ack_s": {"p50": round(statistics.median(acks), 3), "p95": round(percentile(acks, 95), 3), "p99": round(percentile(acks, 99), 3), "max": round(max(acks), 3)},
        "answer_s": {"p50": round(statistics.median(answers), 3), "p95": round(percentile(answers, 95), 3), "max": round(max(answers), 3)},
        "answers_posted_per_request": sorted(set(posted_counts)),
        "failed_answers": failed,
        "confident_answers": confident,
        **({"culprit_in_top5": hits} if culprits else {}),
        "goals": {"ack_p99_under_3s": percentile(acks, 99) < 3, "answer_p95_under_5s": percentile(answers, 95) < 5},
    }
    shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.requests} concurrent /rca on {report['data']} data (warm-up answer {report['warmup_answer_s']} s)")
    print("ack      p50 {p50:.3f} s  p95 {p95:.3f} s  p99 {p99:.3f} s  max {max:.3f} s   (goal p99 < 3 s)".format(**report["ack_s"]))
    print("answer   p50 {p50:.3f} s  p95 {p95:.3f} s  max {max:.3f} s                (goal p95 < 5 s)".format(**report["answer_s"]))
    print(f"answers posted per request: {report['answers_posted_per_request']}, failed answers: {failed}")
    print(f"confident answers: {confident}/{args.requests}" + (f", culprit in the top 5: {hits}/{args.requests}" if culprits else ""))


if __name__ == "__main__":
    main()
