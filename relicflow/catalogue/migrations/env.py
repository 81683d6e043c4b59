"""Alembic environment: uses the engine handed over in config.attributes (see migrate.py)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from relicflow.catalogue.models import Base
from relicflow.catalogue.search_index import is_search_index_object

config = context.config
engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url"))

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table (copy, DROP, rename) to alter it; with foreign keys enforced the DROP
        # of a table that other rows point at fails. The pragma only works outside a transaction, so it
        # goes straight to the driver before SQLAlchemy begins one; integrity is checked afterwards.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch mode for ALTERs
        compare_type=True,
        # the search index (relicflow/catalogue/search_index.py) is raw DDL the models do not declare
        include_name=lambda name, type_, parent_names: not is_search_index_object(name),
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"catalogue migration left rows pointing at nothing: {broken[:5]}")
    connection.commit()
    if sqlite:
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
