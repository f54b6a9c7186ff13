"""Sending again the answers Slack refused (``knowledge.outbox``), each once across replicas.

Every replica's scheduler runs this job; a reply is claimed (``knowledge.claims``)
before it is posted and the claim finished once Slack took it, so two replicas
never post the same answer. A reply Slack refuses again gives its claim back
for the next run; one it refuses for good is given up. The claim's lease lets
another replica take over a reply whose sender died while posting it.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from slack_sdk import WebClient

from bot.blocks import SlackMessage
from bot.metrics import UNSENT_REPLIES
from bot.replies import error_code, open_for_votes, post, refused_for_now
from knowledge.claims import claim, finish, release
from knowledge.outbox import due_replies, give_up, mark_delivered, note_failure

log = structlog.get_logger(__name__)

UNSENT_REPLIES_SCOPE = "unsent_reply"  # claims keyed on the outbox row id, done once Slack took the answer
CLAIM_LEASE = timedelta(minutes=5)
INTERVAL_SECONDS = 30


def send_unsent_replies(client: WebClient, url: str) -> int:
    """Post every due unsent answer no other replica is posting; returns how many this call delivered."""
    delivered = 0
    for reply in due_replies(url):
        key = str(reply.id)
        if not claim(UNSENT_REPLIES_SCOPE, key, url, lease=CLAIM_LEASE):
            continue
        message = SlackMessage(text=reply.text, blocks=reply.blocks)
        try:
            ts = post(client, message, channel=reply.channel, thread_ts=reply.thread_ts, replace_ts=reply.replace_ts)
        except Exception as error:  # every failure is recorded on the row; only "not now" is tried again
            reason = refused_for_now(error)
            if reason is None:
                give_up(reply.id, error_code(error), url)
                finish(UNSENT_REPLIES_SCOPE, key, url)
                UNSENT_REPLIES.labels(outcome="given_up").inc()
                log.error("unsent answer given up", reply_id=reply.id, error=error_code(error))
                continue
            note_failure(reply.id, reason, url)
            release(UNSENT_REPLIES_SCOPE, key, url)
            UNSENT_REPLIES.labels(outcome="refused_again").inc()
            log.warning("unsent answer refused again", reply_id=reply.id, attempts=reply.attempts + 1, error=reason)
            break  # Slack is still refusing: the rest wait for the next run
        finish(UNSENT_REPLIES_SCOPE, key, url)
        mark_delivered(reply.id, url)
        open_for_votes(url, message, reply.incident_id, reply.channel, reply.thread_ts or ts)
        UNSENT_REPLIES.labels(outcome="delivered").inc()
        log.info("unsent answer delivered", reply_id=reply.id, attempts=reply.attempts + 1)
        delivered += 1
    return delivered

