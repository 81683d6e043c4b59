"""Alembic environment: uses the engine handed over in config.attributes (see migrate.py)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from relicflow.catalogue.models import Base

config = context.config
engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url"))

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch mode for ALTERs
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
