"""OpenAI-compatible LLM clients (vLLM in practice), built from the ``CULPRIT_LLM_*`` settings.

Owns the connection values (:class:`~tools.llm.client.LLMEndpoint`), the one
timeout and retry policy, and building clients with them; the report
classifier, the cluster namer, the LLM judge and the agent's chat model all get
their client here. Imports ``knowledge`` only.
"""
