"""Block Kit messages built from culprit's answers: pure functions, no Slack client.

Every message carries a plain ``text`` too: Slack shows it in notifications and
to clients that cannot render blocks, and warns when it is missing. Whatever a
user, a commit or a model wrote goes through :func:`escape`, in blocks and
fallback text alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from knowledge.db import UNREACHABLE
from knowledge.errors import InputError
from tools.rca.answers import Evidence, RcaAnswer, SourceFreshness, SuggestedChange, WikiHit

Block = dict[str, Any]

SECTION_LIMIT = 2900
USAGE = (
    "Tell me what is broken: `/rca <symptom> [service:NAME] [at:2024-05-01T10:00Z]`\n"
    "e.g. `/rca checkout returns 502 for card payments service:payments at:2024-05-01T09:40Z`"
)


@dataclass
class SlackMessage:
    """What ``chat.postMessage`` and ``chat.update`` take: fallback text and blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)


def escape(text: str) -> str:
    """Slack mrkdwn treats ``& < >`` as control characters; user and commit text must not."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def click_failure(error: Exception, could_not: str, retry: str) -> str:
    """What a user is told when a click could not be stored: the input's problem, that the database is down, or
    that the click failed; "unreachable" only for :data:`UNREACHABLE`, as a bad row or a bug is no outage."""
    if isinstance(error, InputError):
        return f"I couldn't {could_not}: {escape(str(error))}."
    if isinstance(error, UNREACHABLE):
        return f"I couldn't {could_not} right now (the database is unreachable); please {retry} in a minute."
    return f"I couldn't {could_not}: the click failed ({type(error).__name__}); the error is in culprit's logs."


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def section(text: str, block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}
    if block_id:
        block["block_id"] = block_id
    return block


def context(*items: str, block_id: str | None = None) -> Block:
    block: Block = {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip(item, 2000)} for item in items[:10]],
    }
    if block_id:
        block["block_id"] = block_id
    return block


def slack_time(moment: datetime) -> str:
    """A timestamp every reader sees in their own time zone, with an ISO fallback."""
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{moment.isoformat(timespec='minutes')}>"


def duration(minutes: float) -> str:
    """How long before the incident a change landed, the way a responder says it."""
    minutes = max(0, round(minutes))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def percent(value: float) -> str:
    return f"{value:.0%}"


def investigating_text(text: str) -> str:
    return f"🔎 Investigating _{escape(clip(text, 200))}_ … I'll post the likely culprits here shortly."


def notice(text: str) -> SlackMessage:
    """A one-paragraph message: usage, a time-out, a refusal."""
    return SlackMessage(text=text, blocks=[section(text)])


def rca_message(answer: RcaAnswer) -> SlackMessage:
    """The full answer: the incident as understood, then suggestions or the strongest signals."""
    blocks: list[Block] = [_heading(answer), _incident_section(answer), _summary_context(answer)]
    if answer.confident and answer.suggestions:
        blocks.append({"type": "divider"})
        if answer.why_first:
            blocks.append(context(f"🥇 {escape(answer.why_first)}", block_id="why-first"))
        for suggestion in answer.suggestions[:5]:
            blocks.extend(suggestion_blocks(suggestion, answer))
    elif answer.stale_sources:
        blocks.append(_stale_section(answer))
    else:
        blocks.append(_signals_section(answer))
    if answer.wiki:
        blocks.append({"type": "divider"})
        blocks.append(_wiki_section(answer.wiki))
    if answer.freshness:
        blocks.append(context(clip("🕒 " + " · ".join(_freshness_item(source) for source in answer.freshness), 2900)))
    if answer.notes:
        blocks.append(context(*(f"ℹ️ {escape(note)}" for note in answer.notes)))
    if answer.model:
        blocks.append(context(f"Judged by {escape(answer.model)}"))
    if answer.unavailable_evidence:
        blocks.append(
            context(*(f"⚠️ evidence unavailable in this answer: {escape(missing)}" for missing in answer.unavailable_evidence))
        )
    return SlackMessage(text=_fallback_text(answer), blocks=blocks[:50])


def _heading(answer: RcaAnswer) -> Block:
    if answer.confident and answer.suggestions:
        title = f"🔎 {len(answer.suggestions[:5])} likely culprits"
    elif answer.stale_sources:
        title = "⏳ My knowledge of recent changes is stale"
    else:
        title = "🤔 Not confident enough to name a culprit"
    return {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}}


def _incident_section(answer: RcaAnswer) -> Block:
    incident = answer.incident
    lines = [f"*Incident as understood:* {escape(clip(incident.full_text, 600))}"]
    facts = [f"*Started:* {slack_time(incident.started_at)}"]
    if incident.service:
        facts.insert(0, f"*Service:* `{escape(incident.service)}`")
    if incident.incident_id:
        facts.append(f"*Incident:* `{escape(incident.incident_id)}`")
    lines.append(" · ".join(facts))
    return section("\n".join(lines), block_id="incident")


def _summary_context(answer: RcaAnswer) -> Block:
    withheld_as_stale = not answer.confident and answer.stale_sources
    items = [] if withheld_as_stale else [f"confidence *{percent(answer.confidence)}*"]
    if answer.expected_hit_rate and not withheld_as_stale:
        items.append(escape(answer.expected_hit_rate))
    if not answer.calibrated:
        items.append(f"uncalibrated: {escape(answer.uncalibrated_because)}")
    if answer.n_candidates:
        items.append(f"{answer.n_candidates} changes landed in the window, {answer.n_retrieved} kept for ranking")
    judges = sorted({suggestion.judge for suggestion in answer.suggestions})
    if judges:
        items.append("judge: " + ", ".join(judges))
    return context(" · ".join(items) or f"{answer.n_candidates} changes landed in the window")


def suggestion_blocks(suggestion: SuggestedChange, answer: RcaAnswer) -> list[Block]:
    """One suggestion: what, who, when, how sure, why, and the 👍 / 👎 pair."""
    minutes = suggestion.evidence.minutes_before_incident or (
        (answer.incident.started_at - suggestion.change.landed_time).total_seconds() / 60
    )
    headline = (
        f"*{suggestion.rank}. {escape(clip(suggestion.change.title, 200))}* `{escape(suggestion.change_id[:12])}`\n"
        f"by *{escape(suggestion.change.author or 'unknown')}* · landed *{duration(minutes)}* before the incident"
        f" · confidence *{percent(suggestion.confidence)}*"
    )
    blocks = [section(headline, block_id=f"suggestion-{suggestion.rank}")]
    reasons = evidence_lines(suggestion.evidence)
    if reasons:
        blocks.append(context(*reasons))
    if suggestion.suggestion_id is not None:
        blocks.append(feedback_actions(suggestion.suggestion_id))
    return blocks


FAMILY_MARKS = {
    "words": "🔤",
    "component map": "🧭",
    "similar changes": "🪞",
    "past incidents": "📚",
    "ownership and dependency path": "🕸️",
    "timing": "⏱️",
    "size and risk": "⚠️",
}
SHOWN_REASONS = 3


def evidence_lines(evidence: Evidence) -> list[str]:
    """The two or three reasons that raised the change most, strongest first, each with its facts;
    evidence that did not help its rank is left out."""
    return [
        f"{FAMILY_MARKS.get(reason.family, '💬')} {escape(reason.sentence)}"
        for reason in evidence.reasons[:SHOWN_REASONS]
    ]


def feedback_actions(suggestion_id: int) -> Block:
    """The 👍 / 👎 pair; one listener on ``feedback_(up|down)`` reads the id from ``value``."""
    return {
        "type": "actions",
        "block_id": f"feedback-{suggestion_id}",
        "elements": [
            {
                "type": "button",
                "action_id": "feedback_up",
                "text": {"type": "plain_text", "text": "👍 Root cause", "emoji": True},
                "value": str(suggestion_id),
            },
            {
                "type": "button",
                "action_id": "feedback_down",
                "text": {"type": "plain_text", "text": "👎 Not it", "emoji": True},
                "value": str(suggestion_id),
            },
            confirm_cause_button(suggestion_id),
        ],
    }


def confirm_cause_button(suggestion_id: int) -> Block:
    """The explicit confirmation: a training label, so Slack asks "are you sure?" before sending it.

    Only configured confirmers and the incident channel's creator may use it;
    the listener checks, the button is shown to everyone.
    """
    return {
        "type": "button",
        "action_id": "confirm_cause",
        "style": "primary",
        "text": {"type": "plain_text", "text": "✅ Confirm as root cause", "emoji": True},
        "value": str(suggestion_id),
        "confirm": {
            "title": {"type": "plain_text", "text": "Confirm the root cause?"},
            "text": {
                "type": "mrkdwn",
                "text": "This change becomes the incident's confirmed root cause and trains the next model. "
                "It is recorded with your name and can be undone.",
            },
            "confirm": {"type": "plain_text", "text": "Confirm"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        },
    }


def with_confirmation(blocks: list[Block], suggestion_id: int, user_id: str | None, confirmed: bool) -> list[Block]:
    """The message with a line under the suggestion saying who confirmed it, and an undo button."""
    updated = [block for block in blocks if block.get("block_id") != f"confirmed-{suggestion_id}"]
    if not confirmed:
        return updated
    line: Block = {
        "type": "section",
        "block_id": f"confirmed-{suggestion_id}",
        "text": {"type": "mrkdwn", "text": f"✅ Confirmed as the root cause by <@{user_id}>" if user_id else "✅ Confirmed as the root cause"},
        "accessory": {
            "type": "button",
            "action_id": "retract_cause",
            "text": {"type": "plain_text", "text": "Undo"},
            "value": str(suggestion_id),
            "confirm": {
                "title": {"type": "plain_text", "text": "Withdraw the confirmation?"},
                "text": {"type": "plain_text", "text": "The change stops being a training label; the audit keeps both steps."},
                "confirm": {"type": "plain_text", "text": "Withdraw"},
                "deny": {"type": "plain_text", "text": "Keep"},
            },
        },
    }
    anchors = [
        index for index, block in enumerate(updated)
        if block.get("block_id") in (f"votes-{suggestion_id}", f"feedback-{suggestion_id}")
    ]
    position = anchors[-1] + 1 if anchors else len(updated)
    return updated[:position] + [line] + updated[position:]


def _signals_section(answer: RcaAnswer) -> Block:
    lines = [
        f"My confidence is *{percent(answer.confidence)}*, too low to name suspects without misleading you."
    ]
    if answer.strongest_signals:
        lines.append("The strongest signals I saw:")
        lines.extend(f"• {escape(signal)}" for signal in answer.strongest_signals[:8])
    else:
        lines.append("No change in the window stood out; check the time (`at:`) and the service (`service:`).")
    return section("\n".join(lines), block_id="signals")


def _freshness_item(source: SourceFreshness) -> str:
    """One source in the answer's freshness line; a stale one says so, as it was shown like the fresh."""
    return f"⚠️ stale: {escape(source.summary)}" if source.stale else escape(source.summary)


def _stale_section(answer: RcaAnswer) -> Block:
    """Withheld because the data ends before the incident: say which sources and how to fix them, not a 0%."""
    lines = ["I cannot judge this incident yet: what I know of these sources ends before it began."]
    lines += [f"• {escape(source.summary)}. *Fix:* {escape(source.fix)}" for source in answer.stale_sources[:8]]
    if answer.strongest_signals:
        lines.append("Among the changes I do know, the strongest signals:")
        lines.extend(f"• {escape(signal)}" for signal in answer.strongest_signals[:3])
    return section(clip("\n".join(lines), 2900), block_id="stale")


def _wiki_section(hits: list[WikiHit]) -> Block:
    lines = ["*Related wiki pages*"]
    for hit in hits[:5]:
        name = escape(hit.title or hit.page)
        heading = f" › {escape(hit.heading)}" if hit.heading else ""
        lines.append(f"• *{name}*{heading} (`{escape(hit.page)}`)")
    return section("\n".join(lines), block_id="wiki")


def _fallback_text(answer: RcaAnswer) -> str:
    """What notifications show: escaped like the blocks, or ``<!channel>`` in a symptom would ping everyone."""
    incident = escape(clip(answer.incident.full_text, 150))
    if not answer.confident and answer.stale_sources:
        stale = ", ".join(escape(source.source) for source in answer.stale_sources[:5])
        return f"My knowledge of recent changes is stale ({stale}) for: {incident}"
    if not (answer.confident and answer.suggestions):
        return f"Not confident enough ({percent(answer.confidence)}) to name a culprit for: {incident}"
    listed = "; ".join(
        f"{s.rank}. {escape(clip(s.change.title, 80))} by {escape(s.change.author or 'unknown')} ({percent(s.confidence)})"
        for s in answer.suggestions[:5]
    )
    return f"Likely culprits for: {incident} — {listed}"


def with_vote(blocks: list[Block], suggestion_id: int, up: int, down: int, user_id: str, vote: int) -> list[Block]:
    """The same message with a line under the suggestion's buttons saying who voted what."""
    said = "marked this as the root cause" if vote > 0 else "says this is not it"
    line = context(f"👍 {up} · 👎 {down} — <@{user_id}> {said}", block_id=f"votes-{suggestion_id}")
    updated: list[Block] = []
    for block in blocks:
        if block.get("block_id") == f"votes-{suggestion_id}":
            continue
        updated.append(block)
        if block.get("block_id") == f"feedback-{suggestion_id}":
            updated.append(line)
    return updated


def reply_message(text: str) -> SlackMessage:
    """A free-form agent answer in Slack mrkdwn, split into sections that fit.

    The agent echoes the question, commit titles and wiki text, so ``& < >`` are
    escaped: its bold, italics and code still render, but no mention, channel
    ping or link can be smuggled through it.
    """
    chunks = split_escaped(escape(text), SECTION_LIMIT)
    return SlackMessage(text=escape(clip(text, 3000)), blocks=[section(chunk) for chunk in chunks[:40]])


def split_escaped(text: str, limit: int) -> list[str]:
    """Escaped text in pieces of at most ``limit`` characters, never cut inside ``&amp;``, ``&lt;`` or ``&gt;``.

    Splitting comes after escaping because escaping lengthens the text: a
    piece escaped after the split could outgrow a section and be clipped. In
    escaped text every ``&`` starts an entity, so a cut that would fall inside
    one moves back to its ``&``.
    """
    pieces = []
    start = 0
    while start < len(text):
        end = min(start + limit, len(text))
        entity = text.rfind("&", max(start, end - len("&amp;") + 1), end)
        if end < len(text) and entity > start and text.index(";", entity) >= end:
            end = entity
        pieces.append(text[start:end])
        start = end
    return pieces or [""]
