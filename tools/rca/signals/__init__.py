"""The retriever's signals: words, component map, similar changes, past incidents,
ownership and dependency path, timing, size and risk, computed per candidate.

Pure functions over ``tools.rca.answers`` objects and what ``knowledge`` stores;
imports nothing from the rest of ``tools.rca`` but the answer objects.
"""
