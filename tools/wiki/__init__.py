"""The wiki as responders use it: hybrid search over runbooks and postmortems,
and its evaluation. The index itself lives in ``knowledge.wiki``.
"""
