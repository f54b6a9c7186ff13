"""How fast an investigation nobody asked for reaches Slack, and that forged or replayed deliveries start none.

Starts the bot (Starlette under uvicorn) against the fake Slack Web API from
the test suite and, on the demo data, measures from the event to the answer
(the placeholder edited into suspects with the re-run button):

- ``channel_created`` for new ``inc-<service>-…`` channels whose topic is a
  recent demo incident's text; goal: under 60 s each,
- a PagerDuty-signed ``incident.triggered`` for the same kind of incident; goal: under 60 s
  (it must be recent to be accepted, so it starts now, after the demo's changes: an answer without suspects),
- the same PagerDuty delivery twice, a forged one and a replayed (stale) one:
  investigations started must stay at one per incident.

Data: ``--demo DIR``, a data directory prepared by ``CULPRIT_DATA_DIR=DIR culprit demo``
(copied first, so the benchmark's incidents never land in it).

    .venv/bin/python benchmarks/auto_investigation.py --demo .culprit [--channels 3] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"})
PD_SECRET = "bench-pagerduty-secret"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", type=Path, required=True, help="data directory prepared by `culprit demo`")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (args.demo / "culprit.db").exists():
        sys.exit(f"{args.demo} has no culprit.db: run `CULPRIT_DATA_DIR={args.demo} culprit demo` first")
    workdir = Path(tempfile.mkdtemp(prefix="culprit-bench-"))
    data_dir = workdir / "data"
    shutil.copytree(args.demo, data_dir, ignore=shutil.ignore_patterns("chroma", "demo"))
    for name in [name for name in os.environ if name.startswith(("SLACK_", "CULPRIT_"))]:
        del os.environ[name]
    os.environ.update({
        "CULPRIT_DATA_DIR": str(data_dir),
        "CULPRIT_DATABASE_URL": f"sqlite:///{data_dir / 'culprit.db'}",
        "CULPRIT_PAGERDUTY_WEBHOOK_SECRET": PD_SECRET,
        "CULPRIT_INCIDENT_POST_CHANNEL": "CPAGED",
    })

    import logging

    import httpx
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    from bot.app import create_app
    from bot.server import create_server
    from knowledge.config import get_settings
    from knowledge.db import migrate, utcnow
    from knowledge.demo import generate_organisation
    from tests.bot.fake_slack import FakeSlack, FakeSlackServer, SlackCall
    from tests.bot.live import LiveServer
    from tests.bot.slack_requests import SIGNING_SECRET, SlackSender

    recent = generate_organisation().incidents[-(args.channels + 1):]
    migrate(os.environ["CULPRIT_DATABASE_URL"])
    names = {f"CBENCH{n}": f"inc-{incident.service}-{n}" for n, incident in enumerate(recent)}
    topics = {f"CBENCH{n}": incident.text[:250] for n, incident in enumerate(recent)}
    fake = FakeSlackServer(FakeSlack(channel_names={**names, "CPAGED": "inc-paged"}, channel_topics=topics))
    with fake as slack:
        os.environ.update({"SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SIGNING_SECRET, "CULPRIT_SLACK_API_URL": fake.api_url})
        get_settings.cache_clear()
        settings = get_settings()
        with LiveServer(create_server(create_app(settings, warm_up=True), settings)) as url:
            sender = SlackSender(url)

            def answer(channel: str) -> SlackCall:
                def done(call: SlackCall) -> bool:
                    return call.method == "chat.update" and call.args.get("channel") == channel and "rerun_channel" in json.dumps(call.args.get("blocks") or [])
                return slack.wait_for(done, timeout=300)[0]

            def answered(channel: str) -> float:
                return answer(channel).at

            channel_s, suspects, culprit_in_five = [], 0, 0
            for n, (channel, name) in enumerate(list(names.items())[: args.channels]):
                # The channel is created when the demo incident started, so its changes are in the window.
                sent = time.time()
                created = int(recent[n].started_at.timestamp())
                sender.event({"type": "channel_created", "channel": {"id": channel, "name": name, "created": created}})
                posted = answer(channel)
                channel_s.append(round(posted.at - sent, 2))
                blocks = json.dumps(posted.args.get("blocks") or [])
                suspects += '"feedback_up"' in blocks
                culprit_in_five += any(f"`{culprit[:12]}`" in blocks for culprit in recent[n].culprits)

            incident = recent[-1]
            event = {"id": "EBENCH1", "event_type": "incident.triggered", "occurred_at": utcnow().isoformat(),
                     "data": {"id": "PBENCH1", "title": incident.text[:200], "service": {"summary": incident.service}}}

            def deliver(event: dict, secret: str = PD_SECRET) -> int:
                body = json.dumps({"event": event}).encode()
                signature = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                return httpx.post(f"{url}/webhooks/pagerduty", content=body,
                                  headers={"X-PagerDuty-Signature": signature, "Content-Type": "application/json"}).status_code

            sent = time.time()
            statuses = {"first": deliver(event)}
            pagerduty_s = round(answered("CPAGED") - sent, 2)
            statuses["duplicate"] = deliver(event)
            statuses["forged"] = deliver({**event, "data": {**event["data"], "id": "PBENCH2"}}, secret="guess")
            stale = (utcnow() - timedelta(hours=3)).isoformat()
            statuses["replayed"] = deliver({**event, "occurred_at": stale, "data": {**event["data"], "id": "PBENCH3"}})
            placeholders = {channel: sum(1 for c in slack.calls_to("chat.postMessage") if c.args.get("channel") == channel)
                            for channel in [*list(names)[: args.channels], "CPAGED"]}
            sender.close()
    shutil.rmtree(workdir, ignore_errors=True)
    report = {
        "channel_created_to_answer_s": channel_s,
        "channel_answers_with_suspects": f"{suspects}/{len(channel_s)}",
        "channel_answers_with_the_culprit_in_five": f"{culprit_in_five}/{len(channel_s)}",
        "pagerduty_to_answer_s": pagerduty_s,
        "pagerduty_statuses": statuses,
        "investigations_posted_per_channel": placeholders,
        "goals": {"under_60s": max([*channel_s, pagerduty_s]) < 60,
                  "one_per_incident": set(placeholders.values()) == {1}},
    }
    print(json.dumps(report, indent=2) if args.json else "\n".join(f"{key}: {value}" for key, value in report.items()))


if __name__ == "__main__":
    main()
