"""bug_reports.why: the reason kept with each classification

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 16:00:00.000000

A JSON text (nearest labeled examples, heaviest words) written when a report
is classified; reports classified before this upgrade have none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('bug_reports') as batch:
        batch.add_column(sa.Column('why', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('bug_reports') as batch:
        batch.drop_column('why')
