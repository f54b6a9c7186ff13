"""changes.functions and changes.identifiers: the names a change's patch holds

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 19:00:00.000000

JSON lists read by ``ingest git`` from each commit's patch (the functions its
hunk headers name, the identifiers it added or removed). Nullable: changes
stored before this upgrade, and change events, have none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Added in place (no batch rebuild): on SQLite a table rebuild would cascade-delete every change's files.
    op.add_column('changes', sa.Column('functions', sa.JSON(), nullable=True))
    op.add_column('changes', sa.Column('identifiers', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('changes', 'identifiers')
    op.drop_column('changes', 'functions')
