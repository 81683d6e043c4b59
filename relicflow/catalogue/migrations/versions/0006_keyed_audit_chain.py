"""keyed audit chain: the fingerprint of the key each entry was sealed with

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 22:00:00

Entries were chained with a plain SHA-256 that anyone with write access to the database could
recompute. From now on each entry is sealed with HMAC-SHA256 under a key kept outside the database;
``key_id`` names that key (a fingerprint, never the key). Existing entries keep NULL here: the
catalogue re-seals them under the key the first time it opens with one, after checking that the old
chain still holds (Alembic cannot do that: it has no key).
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_column('key_id')
