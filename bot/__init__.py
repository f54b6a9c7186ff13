"""Slack surface and process entry points: the Bolt app, HTTP server, scheduler and CLI."""
