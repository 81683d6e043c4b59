"""mint holds: why an approved item is held back from minting

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 22:10:00

The mint re-derives every approval rule from the record before it batches an item (tasks/mint_eligibility.py).
An approved item that breaks one stays approved, so the next run checks it again, and keeps here the
stable code and the English and Chinese reason, for the item page and `relicflow items`, and since when.
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mint_hold_code', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('mint_hold_message_en', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('mint_hold_message_zh', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('mint_hold_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        for column in ('mint_hold_at', 'mint_hold_message_zh', 'mint_hold_message_en', 'mint_hold_code'):
            batch_op.drop_column(column)
