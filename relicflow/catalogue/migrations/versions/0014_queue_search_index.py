"""queue search index: accession numbers, names and file names found by a substring without reading every item

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22 08:30:00

SQLite: an FTS5 trigram table filled from the items and source files, kept current by triggers. PostgreSQL:
pg_trgm GIN indexes, when the server has the extension and the catalogue's role may create it. See
relicflow/catalogue/search_index.py.
"""
from __future__ import annotations

from typing import Sequence, Union

from alembic import op

from relicflow.catalogue import search_index

revision: str = '0014'
down_revision: Union[str, Sequence[str], None] = '0013'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    search_index.create(op.get_bind())


def downgrade() -> None:
    search_index.drop(op.get_bind())
