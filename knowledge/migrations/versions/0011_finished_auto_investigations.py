"""Auto-investigation claims made before this upgrade count as finished

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 06:30:00.000000

Auto-investigation claims now carry a lease, and one left unfinished past it is
taken over by the next delivery. Before this revision none was ever marked
finished, though nearly all of them had their first suspects posted: without
this, culprit added again to an old incident channel would investigate it a
second time. Those whose start failed were given back (deleted) already.
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE claims SET done_at = claimed_at WHERE scope = 'auto_investigation' AND done_at IS NULL")


def downgrade() -> None:
    """Nothing to undo: before this revision a finished claim and an unfinished one meant the same."""
