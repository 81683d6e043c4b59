"""objects with several views, image and record versions, decisions bound to what was seen

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 01:10:00

An item is one object: its images carry a view (正面, 背面, 局部 ...) and a version; a rescan after a
send-back replaces the image of its view (``replaced_by_image_id``). A corrected sheet row is the next
record version. A decision records what the reviewer saw (every current image and the record version).
Existing images are all current, version as recorded; existing items are at record version 1.
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('record_version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('addition_to_item_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_items_addition_to_item_id', ['addition_to_item_id'], unique=False)
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('view', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('view_label', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('file_name', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('replaced_by_image_id', sa.Integer(), nullable=True))
    with op.batch_alter_table('metadata_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('image_id', sa.Integer(), nullable=True))
    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seen', sa.JSON(), nullable=True))
    op.execute("UPDATE metadata_records SET version = 1 WHERE source = 'accession_sheet'")


def downgrade() -> None:
    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.drop_column('seen')
    with op.batch_alter_table('metadata_records', schema=None) as batch_op:
        batch_op.drop_column('image_id')
        batch_op.drop_column('version')
    with op.batch_alter_table('images', schema=None) as batch_op:
        for column in ('replaced_by_image_id', 'file_name', 'view_label', 'view'):
            batch_op.drop_column(column)
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_addition_to_item_id')
        batch_op.drop_column('addition_to_item_id')
        batch_op.drop_column('record_version')
