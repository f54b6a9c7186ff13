"""root_cause_events and model_versions: audited confirmations, versioned rankers

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 16:00:00.000000

Root causes that one thumbs-up wrote before this revision (source ``feedback``)
become ``single_vote``: they stay visible but are no training label until a
confirmer confirms them or a second person agrees.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import knowledge.db


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('root_cause_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.String(length=200), nullable=False),
    sa.Column('change_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('authority', sa.String(length=50), nullable=False),
    sa.Column('suggestion_id', sa.Integer(), nullable=True),
    sa.Column('undoes', sa.Integer(), nullable=True),
    sa.Column('at', knowledge.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('root_cause_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_root_cause_events_incident_id'), ['incident_id'], unique=False)
    op.create_table('model_versions',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('created_at', knowledge.db.UTCDateTime(), nullable=False),
    sa.Column('trained_until', sa.Float(), nullable=False),
    sa.Column('n_cases', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('champion', sa.Boolean(), nullable=False),
    sa.Column('promoted_at', knowledge.db.UTCDateTime(), nullable=True),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('version')
    )
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_versions_champion'), ['champion'], unique=False)
    op.execute("UPDATE root_causes SET source = 'single_vote' WHERE source = 'feedback'")


def downgrade() -> None:
    op.execute("UPDATE root_causes SET source = 'feedback' WHERE source IN ('single_vote', 'votes', 'confirmed')")
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_versions_champion'))
    op.drop_table('model_versions')
    with op.batch_alter_table('root_cause_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_root_cause_events_incident_id'))
    op.drop_table('root_cause_events')
