"""User bug reports: intake (redaction, deduplication, storage), classifiers,
category discovery, trends and spikes, data-quality checks, the weekly digest
and classifier evaluation.

Imports ``knowledge`` and ``tools.llm`` (the LLM classifier's and the cluster
namer's client).
"""
