"""Block Kit builders, without a server: what a responder reads in Slack."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import DataError, OperationalError

from bot.blocks import SECTION_LIMIT, click_failure, duration, escape, rca_message, reply_message, with_vote
from knowledge.db import DatabaseUnavailable
from knowledge.errors import InputError
from tests.changes import change_record
from tools.rca.answers import Evidence, IncidentQuery, RcaAnswer, Reason, SuggestedChange, WikiHit

STARTED = datetime(2024, 5, 1, 9, 40, tzinfo=UTC)


def _suggestion(rank: int, suggestion_id: int | None = None) -> SuggestedChange:
    return SuggestedChange(
        rank=rank,
        change=change_record(
            f"{rank:02d}abcdef0123456789",
            f"payments: change number {rank} <with> & brackets",
            STARTED - timedelta(minutes=37 * rank),
            author="Dana",
        ),
        score=1.0 / rank,
        confidence=0.8 / rank,
        judge="local",
        evidence=Evidence(
            owners=["team-payments"],
            owner_match=True,
            dependency_path=["checkout", "payments"],
            matched_terms=["card", "502"],
            matched_paths=["services/payments/tokenizer.py"],
            minutes_before_incident=37 * rank,
            size="small",
            risk=["config"],
            reasons=[
                Reason("ownership and dependency path", 1.2, "Owned by team-payments, who own the impacted service."),
                Reason("words", 0.7, "Shares these words with the incident: card, 502."),
                Reason("timing", 0.3, "Landed 37 minutes before the incident started."),
                Reason("size and risk", 0.05, "Size: small; it touches config files."),
            ],
        ),
        suggestion_id=suggestion_id,
    )


def _answer(confident: bool = True, **extra) -> RcaAnswer:
    query = IncidentQuery(text="card payments fail with 502", started_at=STARTED, service="payments", incident_id="inc-1")
    return RcaAnswer(
        incident=query,
        confident=confident,
        confidence=0.72 if confident else 0.31,
        suggestions=[_suggestion(rank, 100 + rank) for rank in range(1, 6)] if confident else [],
        n_candidates=134,
        n_retrieved=40,
        why_first="#1 ranks above #2 mostly on ownership and dependency path (70% of what puts it ahead).",
        expected_hit_rate="In past incidents like this, the cause was among these five 7 times in 10.",
        **extra,
    )


def test_a_confident_answer_lists_five_suggestions_each_with_its_vote_buttons() -> None:
    message = rca_message(_answer(wiki=[WikiHit(page="runbooks/payments.md", heading="502s", snippet="", score=1, title="Payments runbook")]))
    assert message.text.startswith("Likely culprits for: card payments fail with 502 — 1. payments: change number 1")
    kinds = [block["type"] for block in message.blocks]
    assert kinds[:3] == ["header", "section", "context"]
    assert kinds.count("actions") == 5
    first = next(block for block in message.blocks if block.get("block_id") == "suggestion-1")["text"]["text"]
    assert "&lt;with&gt; &amp; brackets" in first
    assert "by *Dana*" in first and "landed *37 min* before" in first and "confidence *80%*" in first
    evidence = message.blocks[message.blocks.index(next(b for b in message.blocks if b.get("block_id") == "suggestion-1")) + 1]
    texts = [element["text"] for element in evidence["elements"]]
    assert texts == [
        "🕸️ Owned by team-payments, who own the impacted service.",
        "🔤 Shares these words with the incident: card, 502.",
        "⏱️ Landed 37 minutes before the incident started.",
    ]  # the three strongest, strongest first; the weakest is left out
    actions = next(block for block in message.blocks if block.get("block_id") == "feedback-101")
    assert [(b["action_id"], b["value"]) for b in actions["elements"]] == [
        ("feedback_up", "101"), ("feedback_down", "101"), ("confirm_cause", "101")
    ]
    assert actions["elements"][2]["confirm"]["deny"]["text"] == "Cancel"  # Slack asks before a label is written
    wiki = next(block for block in message.blocks if block.get("block_id") == "wiki")
    assert "*Payments runbook* › 502s (`runbooks/payments.md`)" in wiki["text"]["text"]
    incident = next(block for block in message.blocks if block.get("block_id") == "incident")["text"]["text"]
    assert "<!date^1714556400^" in incident and "`inc-1`" in incident
    summary = message.blocks[2]["elements"][0]["text"]
    assert "the cause was among these five 7 times in 10" in summary and "uncalibrated" not in summary
    why = next(block for block in message.blocks if block.get("block_id") == "why-first")["elements"][0]["text"]
    assert why.startswith("🥇 #1 ranks above #2 mostly on ownership")


def test_an_uncalibrated_confidence_says_so_and_why() -> None:
    answer = _answer(calibrated=False, uncalibrated_because="no trained ranker; run `culprit train`")
    answer.expected_hit_rate = ""
    summary = rca_message(answer).blocks[2]["elements"][0]["text"]
    assert "uncalibrated: no trained ranker; run `culprit train`" in summary


def test_unstored_suggestions_get_no_buttons() -> None:
    answer = _answer()
    for suggestion in answer.suggestions:
        suggestion.suggestion_id = None
    assert not any(block["type"] == "actions" for block in rca_message(answer).blocks)


def test_not_confident_says_so_and_shows_the_strongest_signals() -> None:
    message = rca_message(_answer(confident=False, strongest_signals=["abc123 touched the tokenizer 12 min before"]))
    assert message.blocks[0]["text"]["text"] == "🤔 Not confident enough to name a culprit"
    assert message.text.startswith("Not confident enough (31%)")
    signals = next(block for block in message.blocks if block.get("block_id") == "signals")["text"]["text"]
    assert "31%" in signals and "• abc123 touched the tokenizer 12 min before" in signals
    assert not any(block["type"] == "actions" for block in message.blocks)


def test_a_vote_adds_one_line_under_its_buttons_and_replaces_an_earlier_one() -> None:
    blocks = rca_message(_answer()).blocks
    once = with_vote(blocks, 102, 1, 0, "UALICE", 1)
    twice = with_vote(once, 102, 1, 1, "UBOB", -1)
    lines = [block for block in twice if block.get("block_id") == "votes-102"]
    assert len(lines) == 1
    assert lines[0]["elements"][0]["text"] == "👍 1 · 👎 1 — <@UBOB> says this is not it"
    position = twice.index(lines[0])
    assert twice[position - 1]["block_id"] == "feedback-102"
    assert len(twice) == len(blocks) + 1


def test_durations_read_like_a_responder_says_them() -> None:
    assert [duration(m) for m in (0, 37, 60, 95, 60 * 30, 60 * 24 * 3 + 120)] == ["0 min", "37 min", "1 h", "1 h 35 min", "30 h", "3 d 2 h"]


def test_long_replies_are_split_into_sections_that_fit() -> None:
    message = reply_message("x" * 7000)
    assert len(message.blocks) == 3
    assert all(len(block["text"]["text"]) <= 3000 for block in message.blocks)
    assert len(message.text) <= 3000
    assert escape("<@U1> & co") == "&lt;@U1&gt; &amp; co"


def test_a_reply_is_escaped_before_it_is_split_so_no_section_overflows_or_breaks_an_entity() -> None:
    text = "a" + "&<>" * 3000  # each character escapes to 4 or 5: a chunk escaped after splitting would overflow
    sections = [block["text"]["text"] for block in reply_message(text).blocks]
    assert all(len(chunk) <= SECTION_LIMIT for chunk in sections)
    assert "".join(sections) == escape(text), "nothing clipped, every entity whole"
    assert all(re.fullmatch(r"[^&;]*(?:&(?:amp|lt|gt);[^&;]*)*", chunk) for chunk in sections)


def test_fallback_texts_escape_what_users_and_commits_wrote() -> None:
    answer = _answer()
    answer.incident = IncidentQuery(text="<!channel> card 502 <http://evil|click> & more", started_at=STARTED, incident_id="inc-1")
    confident = rca_message(answer).text
    assert "&lt;!channel&gt; card 502 &lt;http://evil|click&gt; &amp; more" in confident
    assert "change number 1 &lt;with&gt; &amp; brackets" in confident
    answer.confident = False
    assert "for: &lt;!channel&gt;" in rca_message(answer).text

    reply = reply_message("<!here> the culprit is <http://evil|this> & that")
    assert "<!here>" not in reply.text and "<http" not in reply.text
    assert reply.blocks[0]["text"]["text"] == "&lt;!here&gt; the culprit is &lt;http://evil|this&gt; &amp; that"


def test_the_answer_names_the_model_that_judged() -> None:
    judged = rca_message(_answer(model="the starter ranker (trained on 1105 public cases)")).blocks
    texts = [element["text"] for block in judged if block["type"] == "context" for element in block["elements"]]
    assert "Judged by the starter ranker (trained on 1105 public cases)" in texts
    unnamed = rca_message(_answer()).blocks
    assert not any("Judged by" in element["text"] for block in unnamed if block["type"] == "context"
                   for element in block["elements"])  # fmt: skip


def test_a_click_error_that_is_not_an_outage_is_not_called_one() -> None:
    """Every error but an InputError was answered "the database is unreachable", a bad row or a bug included."""
    refused = DataError("INSERT INTO report_labels ...", {}, ValueError("value too long for type character varying(64)"))
    assert click_failure(refused, "relabel the report", "try again") == (
        "I couldn't relabel the report: the click failed (DataError); the error is in culprit's logs."
    )
    for outage in (DatabaseUnavailable("no database"), OperationalError("SELECT 1", {}, ConnectionRefusedError())):
        assert click_failure(outage, "store your vote", "click again") == (
            "I couldn't store your vote right now (the database is unreachable); please click again in a minute."
        )
    assert click_failure(InputError("no <such> suggestion"), "store your vote", "click again") == (
        "I couldn't store your vote: no &lt;such&gt; suggestion."
    )
