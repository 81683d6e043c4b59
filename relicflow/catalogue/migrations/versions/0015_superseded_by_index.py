"""index items.superseded_by_item_id: a decision asks which items an object superseded (the own-item rule)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22 08:50:00

Every decision looks up the runs that brought the item in or changed it (relicflow/catalogue/reviews.py,
handler_runs_in), among them the runs of the items it superseded. Without this index that read every item:
12 ms of a decision's 48 at a hundred thousand items, twice per decision.
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: Union[str, Sequence[str], None] = '0014'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # partial: most items were never superseded, and an index of NULLs would look useless to the planner
    op.create_index('ix_items_superseded_by_item_id', 'items', ['superseded_by_item_id'], unique=False,
                    sqlite_where=sa.text('superseded_by_item_id IS NOT NULL'),
                    postgresql_where=sa.text('superseded_by_item_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_items_superseded_by_item_id', table_name='items')
