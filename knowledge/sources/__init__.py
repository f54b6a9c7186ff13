"""Sources kept current: tracked git repositories (bare mirrors polled incrementally and pushed by
GitHub or GitLab webhooks), change events that are not commits (deploys, flag flips, config pushes,
infrastructure changes), and how fresh each source is.

Owns the ``source_syncs`` table. Imports ``knowledge`` only: the bot's HTTP handlers check
signatures and tokens, then hand parsed payloads here.
"""
