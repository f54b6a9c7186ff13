"""User bug reports: intake (redaction, deduplication, storage), classifiers,
category discovery, trends and spikes, data-quality checks, the weekly digest
and classifier evaluation.

Imports ``knowledge`` only.
"""
