"""Judges behind one protocol: the learned local ranker and the LLM on vLLM.

Owns the ``Judge`` protocol, the model file of the local judge (``model_parts``:
its learned pieces as data), and the prompt the LLM judge and fine-tuning
share. Imports ``knowledge``, ``tools.rca.answers``, ``tools.rca.signals`` and
``tools.rca.confidence``.
"""
