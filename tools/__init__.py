"""Domain capabilities as typed functions, one package per capability.

- ``tools.rca``: find the change behind an incident (retrieval, signals, election,
  judges, confidence, explanations, training, backtests, fine-tuning export).
- ``tools.reports``: user bug reports (intake, redaction, classifiers, discovery,
  trends, spikes, digest, data quality, evaluation).
- ``tools.wiki``: search and evaluate the runbook and postmortem index.
- ``tools.feedback``: responders' votes on suggestions and what they teach.
- ``tools.llm``: OpenAI-compatible clients (vLLM) with one timeout and retry policy.
- ``tools.windows``: the longest time window (366 days) a question to the agent may ask about.

Packages here import ``knowledge`` and each other, never ``graph`` or ``bot``.
"""
