"""Every mapped model in one import, for Alembic and for callers that need the metadata."""

from knowledge.changes import Change, ChangeFile
from knowledge.claims import Claim
from knowledge.confirmations import CauseEvent, ModelVersion
from knowledge.db import Base
from knowledge.incidents import Feedback, Incident, RootCause, Suggestion
from knowledge.ingest.git_tips import IngestedTip
from knowledge.outbox import UnsentReply
from knowledge.ownership import OwnershipRule
from knowledge.reports import Alert, BugReport, Category, CategoryDaily
from knowledge.services import Service
from knowledge.sources.freshness import SourceSync

__all__ = [
    "Alert",
    "Base",
    "BugReport",
    "Category",
    "CauseEvent",
    "CategoryDaily",
    "Change",
    "ChangeFile",
    "Claim",
    "Feedback",
    "Incident",
    "IngestedTip",
    "ModelVersion",
    "OwnershipRule",
    "RootCause",
    "Service",
    "SourceSync",
    "Suggestion",
    "UnsentReply",
]
