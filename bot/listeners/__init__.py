"""Every Slack listener, registered in one place."""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, commands, confirm, incident_channels, mentions, messages, report_relabel, unhandled


def register_listeners(app: App) -> None:
    """Attach the slash command, mention, button and channel-message listeners, then the catch-all for other events."""
    commands.register(app)
    mentions.register(app)
    actions.register(app)
    confirm.register(app)
    incident_channels.register(app)
    report_relabel.register(app)
    messages.register(app)
    unhandled.register(app)  # last: it matches every event type
