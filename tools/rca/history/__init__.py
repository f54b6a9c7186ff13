"""Past investigations as learning material: training the local judge, backtests
and fine-tuning data, each using only what was known when a case started.

Reads the ``shared/data/rca`` interchange format through
``knowledge.ingest.history_files``, or the store's labelled incidents
(``from_store``: confirmed causes only, never a single vote); imports the rest
of ``tools.rca`` and ``tools.feedback``'s label sources.
"""
