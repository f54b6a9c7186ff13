"""Data layer: models, sessions, migrations, ingestion and the wiki index."""

import os

# OpenMP threads that spin while waiting burn the CPU their peers need when the
# machine is shared: with 2 cores under load, MiniLM ran 3x slower and a one-line
# query took 600 ms instead of 35 ms. libgomp reads this once, before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
