"""Data layer: one module per concept (``changes``, ``ownership``, ``services``,
``incidents``, ``reports``, ``claims``, ``outbox``) holding its SQLAlchemy model and
queries, plus
``db`` (engine, sessions, migrations), ``config`` (settings, read only at entry
points above), ``embeddings`` (the packaged MiniLM), ``model_files`` (trained
models saved as data, never pickles) and the packages
``ingest`` (every source loaded idempotently, the history interchange format),
``wiki`` (the Chroma index) and ``demo`` (the demo organisation).

Imports no other tier.
"""

import os

# OpenMP threads that spin while waiting burn the CPU their peers need when the
# machine is shared: with 2 cores under load, MiniLM ran 3x slower and a one-line
# query took 600 ms instead of 35 ms. libgomp reads this once, before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
