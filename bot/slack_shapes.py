"""The types culprit's listeners read in a Slack request, checked once before any of them runs.

Only Slack can sign a request, and Slack sends these fields as text (or, for a
click's user, container and message, as objects). A signed request with a
number, list or null there (a leaked signing secret, a proxy that rewrites
bodies, a Socket Mode bug) used to raise inside a listener: a slash command
answered 500, an event or click a traceback in the log and nothing for the
user. :func:`misshapen` names each such field instead, and the guard in
:mod:`bot.guards` refuses the request with them.

Only the events culprit listens to are checked: another event type may carry
an object where these carry text (``user_change``'s ``user``), and it is
acknowledged and ignored anyway. What Bolt itself reads before any guard could
run is checked in every request: that an event is an object and its type text,
a click's ``actions`` and their ``action_id``, a view's type; which is why the
app runs this check before Bolt's dispatch (:func:`bot.guards.refuse_misshapen`).
"""

from __future__ import annotations

import re
from typing import Any

CHECKED_EVENTS = {"app_mention", "message", "channel_created", "member_joined_channel"}
# As a Socket Mode payload a command is JSON, its fields of any type: a trigger_id that was no text raised in /rca
# before its ack, a channel_name that was none was remembered as the channel's name.
COMMAND_TEXT = ("text", "trigger_id", "channel_name", "response_url")
EVENT_TEXT = ("text", "ts", "thread_ts", "user", "subtype")
MENTION_NEEDS = ("text", "ts")  # and its channel: Slack always sends them, the mention listener reads them
# And a person's mention its user: without one it was answered all the same, past the per-user rate limit, and
# one outside an incident channel raised (its hint is sent to the user). A bot's may have none: it is ignored.
PERSONS_MENTION_NEEDS = (*MENTION_NEEDS, "user")
CLICK_OBJECTS = ("container", "channel", "message")
# Where a click happened, which the click listeners read (bot.listeners.actions.clicked_place) and store.
CLICK_TEXT = {
    "container": ("channel_id", "message_ts", "thread_ts"), "channel": ("id",), "message": ("ts", "thread_ts", "text"),
}
OPTION_VALUE_LIMIT = 150  # Block Kit's limit on an option object's value
BUTTON_VALUE_LIMIT = 2000  # Block Kit's limit on a button's value
ACTION_PAYLOADS = {"block_actions", "interactive_message"}  # Bolt reads their first action
# Slack's url_verification challenge is some 50 letters and digits; Bolt echoes it back as it came, so one that
# was an object, a list or megabytes of text was answered with the same.
CHALLENGE_LIMIT = 100
# Slack's ids (U…, C…, T…, E…) are a dozen or so uppercase letters and digits. An id of any text and length
# was read, logged and stored: a signed request's 100,000-character user_id filled the log line refusing it.
SLACK_ID = re.compile(r"[A-Z0-9]{1,32}")
TOP_LEVEL_IDS = ("team_id", "enterprise_id", "api_app_id", "user_id", "channel_id")  # a command's, an envelope's
EVENT_IDS = ("user", "team", "inviter")  # and its channel, text or (a new channel's) object
CLICK_IDS = {"user": ("id", "team_id"), "team": ("id",), "channel": ("id",), "container": ("channel_id",)}
VIEW_PAYLOADS = {"view_submission", "view_closed"}  # Bolt reads their view's type


def misshapen(body: dict[str, Any]) -> list[str]:
    """Each field culprit reads that is not of the type Slack sends, as ``name must be text`` (or ``an object``)."""
    problems: list[str] = []
    _ids(body, TOP_LEVEL_IDS, "", problems)
    if body.get("type") == "url_verification":
        _challenge(body.get("challenge"), problems)
    if "command" in body:
        for name in ("command", "channel_id", "user_id"):
            _text(body.get(name), name, problems, required=True)
        for name in COMMAND_TEXT:
            _text(body.get(name), name, problems)
    event = body.get("event")
    if "event" in body and not isinstance(event, dict):
        problems.append("event must be an object")
    elif isinstance(event, dict):
        _text(event.get("type"), "event.type", problems)
    if isinstance(event, dict) and event.get("type") in CHECKED_EVENTS:
        needs = _required(event)
        for name in EVENT_TEXT:
            _text(event.get(name), f"event.{name}", problems, required=name in needs)
        _ids(event, EVENT_IDS, "event.", problems)
        channel = event.get("channel")
        if isinstance(channel, dict) and event["type"] == "channel_created":
            _text(channel.get("id"), "event.channel.id", problems, required=True)
            _text(channel.get("name"), "event.channel.name", problems)
            _ids(channel, ("id", "creator"), "event.channel.", problems)
        else:
            _text(channel, "event.channel", problems, required=bool(needs))
            _ids(event, ("channel",), "event.", problems)
    if body.get("type") == "block_actions":
        user = body.get("user")
        _text(user.get("id") if isinstance(user, dict) else None, "user.id", problems, required=True)
        problems += [f"{name} must be an object" for name in CLICK_OBJECTS if name in body and not isinstance(body[name], dict)]
        for name, fields in CLICK_TEXT.items():
            part = body.get(name)
            for field in fields if isinstance(part, dict) else ():
                _text(part.get(field), f"{name}.{field}", problems)
        for name, fields in CLICK_IDS.items():
            if isinstance(part := body.get(name), dict):
                _ids(part, fields, f"{name}.", problems)
        if not _clicked_channel(body):
            problems.append("a click must name its channel (container.channel_id or channel.id)")
        blocks = body["message"].get("blocks", []) if isinstance(body.get("message"), dict) else []
        if not isinstance(blocks, list) or not all(isinstance(block, dict) for block in blocks):
            problems.append("message.blocks must be a list of objects")
        else:
            _menus(blocks, problems)
    if body.get("type") in ACTION_PAYLOADS:
        _actions(body["type"], body.get("actions"), problems)
    if body.get("type") in VIEW_PAYLOADS and "view" in body:
        view = body["view"]
        if isinstance(view, dict):
            _text(view.get("type"), "view.type", problems, required=True)
        else:
            problems.append("view must be an object")
    return problems


def _required(event: dict[str, Any]) -> tuple[str, ...]:
    """The fields a checked event must carry: a mention's, a person's mention's user too; the others' none."""
    if event["type"] != "app_mention":
        return ()
    return MENTION_NEEDS if event.get("bot_id") else PERSONS_MENTION_NEEDS


def _actions(payload_type: str, actions: Any, problems: list[str]) -> None:
    """Bolt reads the first action of a click (its ``action_id`` to match a listener), the listeners their values."""
    if not isinstance(actions, list) or not actions or not all(isinstance(action, dict) for action in actions):
        problems.append("actions must be a non-empty list of objects")
        return
    if payload_type != "block_actions":
        return
    for action in actions:
        _text(action.get("action_id"), "actions[].action_id", problems, required=True)
        _capped_text(action.get("value"), "actions[].value", BUTTON_VALUE_LIMIT, problems)
        if "selected_option" in action and not isinstance(action["selected_option"], dict):
            problems.append("actions[].selected_option must be an object")
        elif "selected_option" in action:
            _capped_text(action["selected_option"].get("value"), "actions[].selected_option.value", OPTION_VALUE_LIMIT, problems)


def _menus(blocks: list[dict[str, Any]], problems: list[str]) -> None:
    """The relabel listener reads each block's menu options to check a choice was offered: their shapes too."""
    for block in blocks:
        accessory = block.get("accessory")
        if accessory is None:
            continue
        if not isinstance(accessory, dict):
            problems.append("message.blocks[].accessory must be an object")
            continue
        options = accessory.get("options")
        if options is None:
            continue
        if not isinstance(options, list) or not all(isinstance(option, dict) for option in options):
            problems.append("message.blocks[].accessory.options must be a list of objects")
            continue
        for option in options:
            _capped_text(option.get("value"), "message.blocks[].accessory.options[].value", OPTION_VALUE_LIMIT, problems)


def _capped_text(value: Any, name: str, limit: int, problems: list[str]) -> None:
    """A value Slack caps when the block is posted (a button's, a menu option's): one longer was never Slack's."""
    if value is not None and not (isinstance(value, str) and len(value) <= limit):
        problems.append(f"{name} must be text of at most {limit} characters")


def _challenge(challenge: Any, problems: list[str]) -> None:
    """The text Bolt echoes back to Slack's url_verification: only a short text, as Slack sends."""
    _text(challenge, "challenge", problems, required=True)
    if isinstance(challenge, str):
        _capped_text(challenge, "challenge", CHALLENGE_LIMIT, problems)


def _clicked_channel(body: dict[str, Any]) -> Any:
    """The channel a click names, as ``bot.listeners.actions.clicked_place`` reads it. Every button and menu
    culprit posts is in a channel: a click naming none had its failure notice posted to channel ""."""
    container, channel = body.get("container"), body.get("channel")
    return (isinstance(container, dict) and container.get("channel_id")) or (isinstance(channel, dict) and channel.get("id"))


def _ids(part: dict[str, Any], names: tuple[str, ...], prefix: str, problems: list[str]) -> None:
    """Each of ``names`` in ``part`` that is text but no Slack id; only its name is kept, never the text sent."""
    for name in names:
        value = part.get(name)
        if isinstance(value, str) and not SLACK_ID.fullmatch(value):
            problems.append(f"{prefix}{name} must be a Slack id (1 to 32 uppercase letters and digits)")


def _text(value: Any, name: str, problems: list[str], *, required: bool = False) -> None:
    if (value is None and not required) or (isinstance(value, str) and (value or not required)):
        return
    problems.append(f"{name} must be text")
