"""review queue indexes: pages, filters and neighbours that cost the same however long the queue is

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 04:00:00

The review queue (relicflow/catalogue/review_queue.py) reads one page at a time in keyset order within a
status, optionally for one ingest run or grade, and starts its approval filters from the approval rows.
"""
from __future__ import annotations

from typing import Sequence, Union

from alembic import op

revision: str = '0011'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

INDEXES = (
    ('ix_items_status_id', 'items', ['status', 'id']),
    ('ix_items_status_ingest_run_id', 'items', ['status', 'ingest_run_id', 'id']),
    ('ix_items_status_grade', 'items', ['status', 'grade', 'id']),
    ('ix_review_decisions_decision_item_id', 'review_decisions', ['decision', 'item_id']),
    ('ix_review_decisions_reviewer_id_decision', 'review_decisions', ['reviewer_id', 'decision', 'item_id']),
    # "resubmitted": the few items with a replaced image or a corrected record
    ('ix_images_replaced_by_image_id', 'images', ['replaced_by_image_id']),
    ('ix_items_record_version', 'items', ['record_version']),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
