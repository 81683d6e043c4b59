"""The queue search's index: "contains this text" over accession numbers, names and file names without
reading every item.

A reviewer types part of an accession number, a name or a file name; the queue shows items that contain it
anywhere (``LIKE '%text%'``), which no B-tree index serves: at a hundred thousand items each search read the
items and file names in full (tens of milliseconds). Both catalogue databases have the field's standard
substring index, built from three-character pieces (trigrams):

- SQLite: an FTS5 table with the trigram tokenizer (SQLite 3.34 or newer), one row per accession number,
  name and file name, kept current by triggers. A quoted FTS5 phrase of trigrams matches exactly the rows
  that contain the text, case-insensitively. Shorter searches (one or two characters) cannot use trigrams
  and fall back to LIKE over the items.
- PostgreSQL: GIN indexes with ``pg_trgm`` under the same ``ILIKE`` the queue already runs. ``pg_trgm`` is
  a trusted extension (PostgreSQL 13+): a database owner may create it; without it the search still works,
  by reading every row.

The triggers are part of the schema but SQLite drops a table's triggers with the table, which is how
Alembic's batch mode alters one: :func:`ensure` re-creates whatever is missing after every migration.
"""

from __future__ import annotations

import logging
import sqlite3

from sqlalchemy import Connection, text

log = logging.getLogger("relicflow.catalogue")

TABLE = "item_search"
MIN_INDEXED_CHARS = 3  # a trigram index cannot find fewer characters than one trigram
SQLITE_TRIGRAM = (3, 34, 0)
PG_INDEXES = (("ix_items_accession_number_trgm", "items", "accession_number"), ("ix_items_title_trgm", "items", "title"),
              ("ix_source_files_file_name_trgm", "source_files", "file_name"))

# Row ids: an item's accession number is -2*id, its name -2*id-1; a source file's name is its own id. Every row
# then has a key the triggers can delete by without searching the index.
_ITEM_ROWS = """
  INSERT INTO item_search(rowid, value, item_id) SELECT -2 * {r}.id, {r}.accession_number, {r}.id WHERE {r}.accession_number IS NOT NULL;
  INSERT INTO item_search(rowid, value, item_id) SELECT -2 * {r}.id - 1, {r}.title, {r}.id WHERE {r}.title IS NOT NULL;"""
_FILE_ROW = """
  INSERT INTO item_search(rowid, value, item_id) SELECT {r}.id, {r}.file_name, {r}.item_id WHERE {r}.file_name IS NOT NULL;"""
SQLITE_TRIGGERS = {
    "item_search_items_insert": f"AFTER INSERT ON items BEGIN{_ITEM_ROWS.format(r='new')}\nEND",
    "item_search_items_update": "AFTER UPDATE OF accession_number, title ON items BEGIN\n"
                                "  DELETE FROM item_search WHERE rowid IN (-2 * old.id, -2 * old.id - 1);"
                                f"{_ITEM_ROWS.format(r='new')}\nEND",
    "item_search_items_delete": "AFTER DELETE ON items BEGIN\n"
                                "  DELETE FROM item_search WHERE rowid IN (-2 * old.id, -2 * old.id - 1);\nEND",
    "item_search_files_insert": f"AFTER INSERT ON source_files BEGIN{_FILE_ROW.format(r='new')}\nEND",
    "item_search_files_update": "AFTER UPDATE OF file_name, item_id ON source_files BEGIN\n"
                                f"  DELETE FROM item_search WHERE rowid = old.id;{_FILE_ROW.format(r='new')}\nEND",
    "item_search_files_delete": "AFTER DELETE ON source_files BEGIN\n  DELETE FROM item_search WHERE rowid = old.id;\nEND",
}


def sqlite_has_trigram() -> bool:
    return sqlite3.sqlite_version_info >= SQLITE_TRIGRAM


def phrase(search: str) -> str:
    """The search text as one FTS5 phrase: every character literal (a double quote is doubled)."""
    return '"' + search.strip().replace('"', '""') + '"'


def uses_index(search: str) -> bool:
    return len(search.strip()) >= MIN_INDEXED_CHARS


def create(conn: Connection) -> None:
    """Build the index over what the catalogue holds now (migration 0014), then its triggers."""
    if conn.dialect.name == "sqlite":
        if not sqlite_has_trigram():
            log.warning("SQLite %s has no trigram tokenizer (3.34+): the queue search reads every item", sqlite3.sqlite_version)
            return
        conn.exec_driver_sql(f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5(value, item_id UNINDEXED, tokenize='trigram')")
        conn.exec_driver_sql(f"DELETE FROM {TABLE}")
        conn.exec_driver_sql(f"INSERT INTO {TABLE}(rowid, value, item_id) SELECT -2 * id, accession_number, id FROM items "
                             "WHERE accession_number IS NOT NULL")
        conn.exec_driver_sql(f"INSERT INTO {TABLE}(rowid, value, item_id) SELECT -2 * id - 1, title, id FROM items WHERE title IS NOT NULL")
        conn.exec_driver_sql(f"INSERT INTO {TABLE}(rowid, value, item_id) SELECT id, file_name, item_id FROM source_files "
                             "WHERE file_name IS NOT NULL")
    ensure(conn)


def drop(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
    elif conn.dialect.name == "postgresql":
        for name, _, _ in PG_INDEXES:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")


def ensure(conn: Connection) -> None:
    """Re-create missing triggers (SQLite) or trigram indexes (PostgreSQL); a no-op when all are there."""
    if conn.dialect.name == "sqlite":
        if not has_sqlite_index(conn):
            return
        for name, body in SQLITE_TRIGGERS.items():
            conn.exec_driver_sql(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")
    elif conn.dialect.name == "postgresql":
        _ensure_pg_trgm(conn)


def has_sqlite_index(conn: Connection) -> bool:
    return conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"), {"name": TABLE}).first() is not None


def _ensure_pg_trgm(conn: Connection) -> None:
    savepoint = conn.begin_nested()
    try:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, table, column in PG_INDEXES:
            conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({column} gin_trgm_ops)")
    except Exception as exc:  # no pg_trgm on this server, or no right to create it: searches read every row
        savepoint.rollback()
        log.warning("PostgreSQL trigram indexes not created (%s): the queue search reads every item", exc)
    else:
        savepoint.commit()


def is_search_index_object(name: str | None) -> bool:
    """The index's tables (FTS5's own shadow tables too) and indexes, which the models do not declare."""
    return bool(name) and (name == TABLE or name.startswith(f"{TABLE}_") or name in {n for n, _, _ in PG_INDEXES})  # type: ignore[union-attr]
