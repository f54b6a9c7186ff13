"""Responders' votes on suggestions: storing them, weekly precision, and the
confirmed root causes that become training data. Imports ``knowledge`` only.
"""
