"""bug_reports.label_origin: whether a label came with the report or from a responder

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 20:20:00.000000

``culprit reports show`` called every label "by a person", a labeled file's
too. A label that differs from the stored category (or sits on a report not
classified yet) came with the report: a relabel sets both. Other labels stay
without an origin, as nothing recorded which one they had.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('bug_reports') as batch:
        batch.add_column(sa.Column('label_origin', sa.String(length=20), nullable=True))
    op.execute(
        "UPDATE bug_reports SET label_origin = 'report' "
        "WHERE label IS NOT NULL AND (category IS NULL OR category <> label)"
    )


def downgrade() -> None:
    with op.batch_alter_table('bug_reports') as batch:
        batch.drop_column('label_origin')
