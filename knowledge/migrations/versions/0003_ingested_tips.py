"""ingested_tips: where the last ingest of each repository's branch stopped

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:00:00.000000

Starts empty: the first ``ingest git`` of a branch after this upgrade reads its
whole history once (storing nothing twice) and remembers its tip.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import knowledge.db


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ingested_tips',
    sa.Column('repo', sa.String(length=200), nullable=False),
    sa.Column('branch', sa.String(length=255), nullable=False),
    sa.Column('tip', sa.String(length=64), nullable=False),
    sa.Column('since', knowledge.db.UTCDateTime(), nullable=True),
    sa.Column('changes', sa.Integer(), nullable=False),
    sa.Column('ingested_at', knowledge.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('repo', 'branch')
    )


def downgrade() -> None:
    op.drop_table('ingested_tips')
