"""Root-cause analysis: from an incident to the five changes most likely behind it.

Owns the shared answer objects (``answers``), retrieval, the election ranker,
the confidence gate, explanations, change embeddings, storing answers and the
deadline an investigation checks between its stages (``deadline``). Its
subpackages: ``signals`` (the features every candidate gets), ``judges`` (the
local and LLM judges behind one protocol) and ``history`` (past investigations:
training, backtests, fine-tuning export). Imports ``knowledge`` and ``tools.llm``
(the LLM judge's client).
"""
