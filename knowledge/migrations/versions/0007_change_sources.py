"""change events and source freshness: kinds, links and carried commits on changes; source_syncs

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-30 16:00:00.000000

Existing changes are commits: ``kind`` defaults to ``commit``, ``partial`` to
false (they came from git, with line counts).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import knowledge.db


revision: str = '0007'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('changes') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=20), server_default='commit', nullable=False))
        batch.add_column(sa.Column('link', sa.Text(), server_default='', nullable=False))
        batch.add_column(sa.Column('environment', sa.String(length=100), server_default='', nullable=False))
        batch.add_column(sa.Column('version', sa.String(length=200), server_default='', nullable=False))
        batch.add_column(sa.Column('carries', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('partial', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table('source_syncs',
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('checked_at', knowledge.db.UTCDateTime(), nullable=True),
    sa.Column('newest_change_at', knowledge.db.UTCDateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('source')
    )


def downgrade() -> None:
    op.drop_table('source_syncs')
    with op.batch_alter_table('changes') as batch:
        for column in ('partial', 'carries', 'version', 'environment', 'link', 'kind'):
            batch.drop_column(column)
