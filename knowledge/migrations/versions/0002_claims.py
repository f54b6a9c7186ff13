"""one claims table for Slack deliveries, weekly digests and alert posts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:00:00.000000

``slack_deliveries`` rows become ``slack_delivery`` claims, ``digest_runs``
rows ``weekly_digest`` claims keyed ``<iso week>:<channel>`` (posted_at is
done_at), and posted alerts ``alert`` claims keyed on the alert id.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import knowledge.db


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('claims',
    sa.Column('scope', sa.String(length=50), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('claimed_at', knowledge.db.UTCDateTime(), nullable=False),
    sa.Column('done_at', knowledge.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('scope', 'key')
    )
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.create_index('ix_claims_scope_claimed_at', ['scope', 'claimed_at'], unique=False)

    op.execute(
        "INSERT INTO claims (scope, key, holder, claimed_at, done_at) "
        "SELECT 'slack_delivery', event_id, '', received_at, NULL FROM slack_deliveries"
    )
    op.execute(
        "INSERT INTO claims (scope, key, holder, claimed_at, done_at) "
        "SELECT 'weekly_digest', iso_week || ':' || channel, claimed_by, claimed_at, posted_at FROM digest_runs"
    )
    op.execute(
        "INSERT INTO claims (scope, key, holder, claimed_at, done_at) "
        "SELECT 'alert', CAST(id AS VARCHAR(200)), '', posted_at, posted_at FROM alerts WHERE posted_at IS NOT NULL"
    )
    op.drop_table('slack_deliveries')
    op.drop_table('digest_runs')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('posted_at')


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('posted_at', knowledge.db.UTCDateTime(), nullable=True))
    op.create_table('digest_runs',
    sa.Column('iso_week', sa.String(length=10), nullable=False),
    sa.Column('channel', sa.String(length=100), nullable=False),
    sa.Column('claimed_at', knowledge.db.UTCDateTime(), nullable=False),
    sa.Column('claimed_by', sa.String(length=200), nullable=False),
    sa.Column('posted_at', knowledge.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('iso_week', 'channel')
    )
    op.create_table('slack_deliveries',
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('received_at', knowledge.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.execute(
        "UPDATE alerts SET posted_at = (SELECT claimed_at FROM claims "
        "WHERE claims.scope = 'alert' AND claims.key = CAST(alerts.id AS VARCHAR(200)))"
    )
    op.execute(
        "INSERT INTO digest_runs (iso_week, channel, claimed_at, claimed_by, posted_at) "
        "SELECT substr(key, 1, strpos_colon - 1), substr(key, strpos_colon + 1), claimed_at, holder, done_at "
        "FROM (SELECT key, claimed_at, holder, done_at, " + _position_of_colon() + " AS strpos_colon "
        "FROM claims WHERE scope = 'weekly_digest') AS digests"
    )
    op.execute(
        "INSERT INTO slack_deliveries (event_id, kind, received_at) "
        "SELECT key, CASE WHEN key LIKE 'cmd-%' THEN 'command' ELSE 'event' END, claimed_at "
        "FROM claims WHERE scope = 'slack_delivery'"
    )
    op.drop_table('claims')


def _position_of_colon() -> str:
    """``instr`` on SQLite, ``strpos`` on PostgreSQL: where the week ends in a digest key."""
    return "instr(key, ':')" if op.get_bind().dialect.name == "sqlite" else "strpos(key, ':')"
