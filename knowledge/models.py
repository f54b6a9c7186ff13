"""Every mapped model in one import, for Alembic and for callers that need the metadata."""

from knowledge.changes import Change, ChangeFile
from knowledge.claims import Claim
from knowledge.db import Base
from knowledge.incidents import Feedback, Incident, RootCause, Suggestion
from knowledge.ingest.git_tips import IngestedTip
from knowledge.outbox import UnsentReply
from knowledge.ownership import OwnershipRule
from knowledge.reports import Alert, BugReport, Category, CategoryDaily
from knowledge.services import Service

__all__ = [
    "Alert",
    "Base",
    "BugReport",
    "Category",
    "CategoryDaily",
    "Change",
    "ChangeFile",
    "Claim",
    "Feedback",
    "Incident",
    "IngestedTip",
    "OwnershipRule",
    "RootCause",
    "Service",
    "Suggestion",
    "UnsentReply",
]
