"""stored objects inventory for fixity

The table, then a backfill from what the catalogue already knows: originals (images, and source files
of quarantined items) with their SHA-256; access copies and thumbnails with the hash unknown (their keys
carry only a 16-hex prefix; the first fixity check adopts the store's recorded hash and says so); the
mint flow's metadata documents from the mint batches (their key is their SHA-256).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 18:51:34.576060

"""
from __future__ import annotations

import re
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_METADATA_KEY = re.compile(r"(metadata/([0-9a-f]{64})\.json)$")
_ITEM_REF = re.compile(r"^relicflow:item:(\d+)$")
_NOT_YET = "NOT EXISTS (SELECT 1 FROM stored_objects s WHERE s.key = {column})"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('stored_objects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=1024), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('sha256_source', sa.String(length=16), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_check', sa.String(length=16), nullable=True),
    sa.Column('last_check_detail', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_stored_objects_item_id_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stored_objects')),
    sa.UniqueConstraint('key', name=op.f('uq_stored_objects_key'))
    )
    with op.batch_alter_table('stored_objects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stored_objects_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_stored_objects_last_check'), ['last_check'], unique=False)
        batch_op.create_index(batch_op.f('ix_stored_objects_last_checked_at'), ['last_checked_at'], unique=False)
    _backfill()


def _backfill() -> None:
    """Portable SQL (SQLite and PostgreSQL); one key is registered once, the first source winning."""
    columns = "INSERT INTO stored_objects (key, sha256, sha256_source, size_bytes, role, item_id, created_at) "
    op.execute(columns + "SELECT original_key, sha256, 'catalogue', size_bytes, 'original', item_id, created_at "
                         "FROM images")
    op.execute(columns + "SELECT f.original_key, MIN(f.sha256), 'catalogue', MIN(f.size_bytes), 'original', MIN(f.item_id), "
                         "MIN(f.seen_at) FROM source_files f WHERE f.original_key IS NOT NULL AND "
                         + _NOT_YET.format(column="f.original_key") + " GROUP BY f.original_key")
    for role, column in (("access", "access_key"), ("thumbnail", "thumbnail_key")):
        op.execute(columns + f"SELECT i.{column}, NULL, NULL, NULL, '{role}', MIN(i.item_id), MIN(i.created_at) "
                             f"FROM images i WHERE i.{column} IS NOT NULL AND " + _NOT_YET.format(column=f"i.{column}")
                             + f" GROUP BY i.{column}")
    _backfill_metadata_documents()


def _backfill_metadata_documents() -> None:
    """The metadata JSON of every mint batch item: its key ends in metadata/<sha256>.json."""
    conn = op.get_bind()
    batches = sa.table("mint_batches", sa.column("id", sa.Integer), sa.column("request_body", sa.JSON),
                       sa.column("created_at", sa.DateTime(timezone=True)))
    items = sa.table("items", sa.column("id", sa.Integer))
    stored = sa.table("stored_objects", sa.column("key", sa.String), sa.column("sha256", sa.String),
                      sa.column("sha256_source", sa.String), sa.column("role", sa.String),
                      sa.column("item_id", sa.Integer), sa.column("created_at", sa.DateTime(timezone=True)))
    known_items = set(conn.scalars(sa.select(items.c.id)))
    seen = set(conn.scalars(sa.select(stored.c.key).where(stored.c.key.like("metadata/%"))))
    rows = []
    for body, created_at in conn.execute(sa.select(batches.c.request_body, batches.c.created_at).order_by(batches.c.id)):
        for entry in (body or {}).get("items", []):
            match = _METADATA_KEY.search(str(entry.get("metadata_uri", "")))
            if match is None or match.group(1) in seen:
                continue
            ref = _ITEM_REF.match(str(entry.get("item_ref", "")))
            item_id = int(ref.group(1)) if ref and int(ref.group(1)) in known_items else None
            seen.add(match.group(1))
            rows.append({"key": match.group(1), "sha256": match.group(2), "sha256_source": "catalogue",
                         "role": "metadata", "item_id": item_id, "created_at": created_at})
    if rows:
        conn.execute(stored.insert(), rows)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('stored_objects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stored_objects_last_checked_at'))
        batch_op.drop_index(batch_op.f('ix_stored_objects_last_check'))
        batch_op.drop_index(batch_op.f('ix_stored_objects_item_id'))

    op.drop_table('stored_objects')
