"""unsent_replies: answers Slack refused after the retries, sent again by the scheduler

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:00:00.000000

Starts empty.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import knowledge.db


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('unsent_replies',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('channel', sa.String(length=50), nullable=False),
    sa.Column('thread_ts', sa.String(length=50), nullable=True),
    sa.Column('replace_ts', sa.String(length=50), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('blocks', sa.JSON(), nullable=False),
    sa.Column('incident_id', sa.String(length=100), nullable=True),
    sa.Column('created_at', knowledge.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', knowledge.db.UTCDateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=200), nullable=False),
    sa.Column('delivered_at', knowledge.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('unsent_replies', schema=None) as batch_op:
        batch_op.create_index('ix_unsent_replies_delivered_expires', ['delivered_at', 'expires_at'], unique=False)


def downgrade() -> None:
    op.drop_table('unsent_replies')
