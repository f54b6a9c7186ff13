"""The wiki: runbooks, service pages and postmortems, chunked by heading and indexed in Chroma."""
