"""issuer recovery: each receipt names the issuer batch its token was minted in

Revision ID: 0007
Revises: 0005 (re-pointed to the review record's 0006 when both branches are merged)
Create Date: 2026-11-21 22:10:00

After a catalogue restore or a replayed request, an item's token can sit in another issuer batch than
the catalogue batch that recorded it. ``mint_receipts.issuer_batch_ref`` keeps which one; existing rows
were minted in their own batch, so they are backfilled from it. Batch statuses gain ``recovered`` and
``released`` (plain strings, no schema change).
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('mint_receipts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('issuer_batch_ref', sa.String(length=128), nullable=True))
    op.execute("UPDATE mint_receipts SET issuer_batch_ref ="
               " (SELECT mint_batches.batch_ref FROM mint_batches WHERE mint_batches.id = mint_receipts.batch_id)")
    with op.batch_alter_table('mint_receipts', schema=None) as batch_op:
        batch_op.alter_column('issuer_batch_ref', existing_type=sa.String(length=128), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('mint_receipts', schema=None) as batch_op:
        batch_op.drop_column('issuer_batch_ref')
