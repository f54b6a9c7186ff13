"""change attribution: services reached through a shared library, and each service's catalog type

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 16:00:00.000000

Existing changes start with no dependant services and existing services with
no type: ``culprit ingest catalog`` (or ``culprit ingest reattribute``) fills
them from the catalog.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both engines: SQLite's batch mode would copy ``changes`` into a new
    # table and drop the old one, and that drop cascades to every stored ``change_files`` row.
    op.add_column('changes', sa.Column('dependant_services', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    op.add_column('services', sa.Column('kind', sa.String(length=50), nullable=False, server_default=''))


def downgrade() -> None:
    op.drop_column('services', 'kind')
    op.drop_column('changes', 'dependant_services')
