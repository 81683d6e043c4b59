"""Fixtures shared across the suite: settings on a temporary data dir and a real Prefect server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from relicflow.settings import Settings, load_settings  # noqa: E402


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings on a fresh data dir; no relicflow.toml or RELICFLOW_* from the developer's shell leak in."""
    postgres = os.environ.get("RELICFLOW_TEST_POSTGRES_URL")  # read before RELICFLOW_* is cleared below
    database_url = _fresh_postgres_database(postgres) if postgres else None
    for key in list(os.environ):
        if key.startswith("RELICFLOW_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RELICFLOW_CONFIG", str(tmp_path / "absent.toml"))
    if database_url:  # so the CLI and child processes in the test use the same database
        monkeypatch.setenv("RELICFLOW_DATABASE_URL", database_url)
    yield load_settings(data_dir=tmp_path / "data", inbox_settle_s=0.0, database_url=database_url)
    if postgres and database_url:
        _drop_postgres_database(postgres, database_url)


def _fresh_postgres_database(server: str) -> str:
    """With RELICFLOW_TEST_POSTGRES_URL (a server URL, e.g. postgresql+psycopg://user@127.0.0.1:5432/postgres)
    each test gets its own new database on that server, so the suite runs on PostgreSQL; else SQLite."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"relicflow_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(server: str, url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A real (temporary) Prefect server for the whole session, on its own SQLite database."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield
