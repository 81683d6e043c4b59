"""roles and sessions: the user's language, idle sessions, who started an ingest run

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22 04:00:00

- ``users.locale``: the review app's language for the user once signed in (NULL: not chosen yet).
- ``web_sessions.last_seen_at``: the last request of a session, for the idle timeout (NULL on sessions from
  before this revision: their ``created_at`` counts).
- ``ingest_runs.operator``: who started the run (``relicflow ingest --by``, else the login name); the items it
  brought in or changed may not be approved by a user of that name. NULL for scheduled runs and older runs.

The new roles (senior_reviewer, auditor) need no schema: ``users.role`` is a plain string.
(Re-chained onto 0011 on merge.)
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: Union[str, Sequence[str], None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('locale', sa.String(length=8), nullable=True))
    with op.batch_alter_table('web_sessions') as batch:
        batch.add_column(sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('ingest_runs') as batch:
        batch.add_column(sa.Column('operator', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ingest_runs') as batch:
        batch.drop_column('operator')
    with op.batch_alter_table('web_sessions') as batch:
        batch.drop_column('last_seen_at')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('locale')
