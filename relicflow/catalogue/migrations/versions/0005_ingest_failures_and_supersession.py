"""ingest failures, supersession, guessed accession numbers, run heartbeats and progress

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 19:40:00

Items gain the attempts and last error of ingest failures that were our fault (status ``failed``), the
item that superseded a stale quarantine, and where the accession number came from (the sheet, or a
guess from the file name). Ingest runs gain a heartbeat (so a killed run can be told from a running
one), an outcome, a caller's label and progress counts. Source files are keyed by where they arrived
(a hash of the inbox path, indexed: every scheduled run looks each inbox file up by it), so the same
bytes under the same name in two folders are two recorded arrivals, not one row whose path flips.
"""
from __future__ import annotations

from typing import Sequence, Union

import hashlib

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accession_number_source', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('last_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('superseded_by_item_id', sa.Integer(), nullable=True))
    op.execute("UPDATE items SET accession_number_source = 'sheet' WHERE accession_number IS NOT NULL")
    with op.batch_alter_table('ingest_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('label', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('files_total', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('files_done', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index(batch_op.f('ix_ingest_runs_label'), ['label'], unique=False)
    op.execute("UPDATE ingest_runs SET outcome = 'completed' WHERE finished_at IS NOT NULL")
    with op.batch_alter_table('source_files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('path_key', sa.String(length=64), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, inbox_path FROM source_files")).all()
    for row_id, inbox_path in rows:
        connection.execute(sa.text("UPDATE source_files SET path_key = :key WHERE id = :id"),
                           {"key": hashlib.sha256(inbox_path.encode("utf-8")).hexdigest(), "id": row_id})
    with op.batch_alter_table('source_files', schema=None) as batch_op:
        batch_op.alter_column('path_key', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_constraint('uq_source_files_sha256_file_name', type_='unique')
        batch_op.create_unique_constraint('uq_source_files_sha256_path_key', ['sha256', 'path_key'])
        batch_op.create_index('ix_source_files_path_key', ['path_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('source_files', schema=None) as batch_op:
        batch_op.drop_index('ix_source_files_path_key')
        batch_op.drop_constraint('uq_source_files_sha256_path_key', type_='unique')
        batch_op.create_unique_constraint('uq_source_files_sha256_file_name', ['sha256', 'file_name'])
        batch_op.drop_column('path_key')
    with op.batch_alter_table('ingest_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingest_runs_label'))
        for column in ('files_done', 'files_total', 'label', 'outcome', 'heartbeat_at'):
            batch_op.drop_column(column)
    with op.batch_alter_table('items', schema=None) as batch_op:
        for column in ('superseded_by_item_id', 'last_error', 'attempts', 'accession_number_source'):
            batch_op.drop_column(column)
