"""Responders' votes on suggestions, confirmed root causes (who may confirm, the two-vote rule,
the audit trail and undo), and the weekly figures judged by confirmed causes. Imports ``knowledge`` only.
"""
