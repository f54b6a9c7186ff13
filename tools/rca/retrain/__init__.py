"""Retraining the local judge with a promotion gate, and the versions it keeps.

A challenger learns from the store's history (past investigations, postmortems
and confirmed causes), is replayed against the champion on the latest cases
the champion never trained on, and replaces it only if it ranks and calibrates
no worse. Versions live in the database (``model_versions``) and their files in
the data directory, so every replica serves the same champion. Imports
``knowledge`` and the rest of ``tools.rca``; the RCA graph comes in as a function.
"""
