"""The wiki: runbooks, service pages and postmortems, chunked by heading and indexed in Chroma, from a
folder or from sources re-synced on a schedule (Confluence, Notion and Slack exports, in ``sources``)."""
