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
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings on a fresh data dir; no relicflow.toml or RELICFLOW_* from the developer's shell leak in."""
    for key in list(os.environ):
        if key.startswith("RELICFLOW_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RELICFLOW_CONFIG", str(tmp_path / "absent.toml"))
    return load_settings(data_dir=tmp_path / "data", inbox_settle_s=0.0)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A real (temporary) Prefect server for the whole session, on its own SQLite database."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield
