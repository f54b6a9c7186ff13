"""A rate-limited Slack call waits out a short Retry-After, and fails at once on one that would hold it."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.app import web_client
from knowledge.config import Settings

from tests.bot.fake_slack import FakeSlack, FakeSlackServer


def _web_client(slack: FakeSlack) -> WebClient:
    return web_client(Settings(slack_bot_token=SecretStr("xoxb-test"), slack_api_url=slack.base_url + "api/"))


@pytest.mark.parametrize(
    "retry_after", ["86400", "31", "Wed, 21 Oct 2026 07:28:00 GMT", "-1", "soon"],
    ids=["a-day", "over-the-cap", "http-date", "negative", "not-a-time"],
)
def test_a_retry_after_that_would_hold_the_call_fails_it_as_rate_limited_at_once(retry_after: str) -> None:
    with FakeSlackServer(FakeSlack(rate_limited={"chat.postMessage": 1}, retry_after=retry_after)) as slack:
        client = _web_client(slack)
        with pytest.raises(SlackApiError) as raised:
            client.chat_postMessage(channel="CINCIDENT", text="Investigating...")

    assert raised.value.response.status_code == 429
    assert raised.value.response["error"] == "ratelimited"  # what the outbox keeps the answer for
    assert [call.method for call in slack.calls] == ["rate_limited:chat.postMessage"]


@pytest.mark.parametrize("retry_after", ["0", "1"])
def test_a_short_retry_after_is_waited_out_and_the_call_sent_again(retry_after: str) -> None:
    with FakeSlackServer(FakeSlack(rate_limited={"chat.postMessage": 1}, retry_after=retry_after)) as slack:
        posted = _web_client(slack).chat_postMessage(channel="CINCIDENT", text="Investigating...")

    assert posted["ok"] is True
    assert [call.method for call in slack.calls] == ["rate_limited:chat.postMessage", "chat.postMessage"]
