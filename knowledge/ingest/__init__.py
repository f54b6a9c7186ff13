"""Loading every source culprit learns from into the store, idempotently.

Each loader is a plain function taking a database URL and a :class:`Progress`;
running it twice on the same input stores nothing the second time.
"""
