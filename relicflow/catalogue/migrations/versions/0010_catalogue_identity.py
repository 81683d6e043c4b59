"""catalogue identity: a UUID made once per catalogue

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 01:00:00

Every flow run carries the identity of the catalogue it was started for; a run that opens another
installation's catalogue refuses to act. A new catalogue gets its UUID here (at `relicflow init`); one
created before this revision gets it on its first migrate. (Re-chained onto 0009 on merge.)
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    table = op.create_table(
        'catalogue_identity',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(length=36), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_catalogue_identity')),
        sa.UniqueConstraint('uuid', name=op.f('uq_catalogue_identity_uuid')),
    )
    op.bulk_insert(table, [{'id': 1, 'uuid': str(uuid.uuid4()), 'created_at': datetime.now(timezone.utc)}])


def downgrade() -> None:
    op.drop_table('catalogue_identity')
