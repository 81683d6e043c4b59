"""One installation, one catalogue, one Prefect server: the catalogue's identity, the data dir check, and
the choice of Prefect server for one-off commands (relicflow/installation.py, relicflow/cli.py).

Real parts: SQLite catalogues, the CLI in-process (typer's CliRunner) and as a real subprocess, and the
session's real Prefect server playing another installation's server ("the stranger").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from alembic import command
from click.testing import Result
from typer.testing import CliRunner

from relicflow.catalogue import Catalogue
from relicflow.catalogue.migrate import alembic_config
from relicflow.cli import app, prefect_environment
from relicflow.installation import (
    catalogue_identity,
    claim_server,
    forget_server,
    own_server,
    record_server,
    server_catalogue,
    server_record_path,
)
from relicflow.settings import Settings, load_settings
from tests.relicflow.test_catalogue import HEAD

PER_INVOCATION_ENV = {key: None for key in ("PREFECT_HOME", "PREFECT_API_URL", "RELICFLOW_DATA_DIR", "RELICFLOW_LOCALE")}


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("RELICFLOW_"):
            monkeypatch.delenv(key)
    for key in ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_LOGGING_LEVEL", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"):
        monkeypatch.setenv(key, "x")
        monkeypatch.delenv(key)  # restored after the test: the CLI writes these into os.environ
    monkeypatch.setenv("RELICFLOW_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("COLUMNS", "250")


def cli(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, ["--lang", "en", *args], catch_exceptions=False, env={**PER_INVOCATION_ENV, **(env or {})})


def test_init_gives_the_catalogue_an_identity_that_never_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("init").exit_code == 0
    settings = load_settings()
    first = catalogue_identity(settings)
    assert str(uuid.UUID(first)) == first
    assert cli("init").exit_code == 0  # a second init, and every migrate, keep it
    assert catalogue_identity(settings) == first
    other = tmp_path / "other"
    assert cli("--data-dir", str(other), "init").exit_code == 0
    assert catalogue_identity(load_settings(data_dir=other)) != first


def test_a_catalogue_from_before_identities_gets_one_on_its_first_migrate(tmp_path: Path) -> None:
    identities = []
    for name in ("a", "b"):
        catalogue = Catalogue(f"sqlite:///{tmp_path / name / 'catalogue.sqlite3'}")
        command.upgrade(alembic_config(catalogue.engine), "0008")
        catalogue.migrate()
        identities.append(catalogue.identity())
        catalogue.migrate()
        assert catalogue.identity() == identities[-1]
        catalogue.dispose()
    assert identities[0] != identities[1]
    assert HEAD == "0012"


@pytest.mark.parametrize("command_line", [["items"], ["items", "--json"], ["ingest"], ["mint"], ["fixity", "--json"],
                                          ["users", "list"], ["audit", "verify"], ["serve"], ["batches", "list"],
                                          ["reconcile"], ["retry", "1"]])
def test_a_command_outside_an_installation_refuses_and_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       command_line: list[str]) -> None:
    elsewhere = tmp_path / "some-folder"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = cli(*command_line)
    assert result.exit_code == 2
    expected = str(elsewhere / "relicflow-data")
    assert f"No relicflow installation in {expected}" in result.stderr
    assert f"{expected} 不是 relicflow 的数据目录" in result.stderr
    assert "relicflow init" in result.stderr and "--data-dir" in result.stderr and "RELICFLOW_DATA_DIR" in result.stderr
    assert result.stdout == ""
    assert list(tmp_path.rglob("*")) == [elsewhere]  # nothing created, not even the data dir


def test_init_creates_and_then_every_command_says_which_data_dir_it_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    named = tmp_path / "museum" / "data"
    refused = cli("items", env={"RELICFLOW_DATA_DIR": str(named)})
    assert refused.exit_code == 2 and f"No relicflow installation in {named}" in refused.stderr and not named.exists()
    created = cli("init", env={"RELICFLOW_DATA_DIR": str(named)})
    assert created.exit_code == 0 and (named / "catalogue.sqlite3").is_file()
    listed = cli("items", "--json", env={"RELICFLOW_DATA_DIR": str(named)})
    assert listed.exit_code == 0
    assert json.loads(listed.stdout) == []  # stdout is the JSON alone
    assert f"Data dir: {named}" in listed.stderr


def _stranger_url() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url
    return str(url)


@pytest.fixture
def installed(tmp_path: Path, prefect_server: None) -> Settings:
    """An installation whose prefect_port is where the stranger (another installation's server) answers."""
    port = httpx.URL(_stranger_url()).port
    settings = load_settings(data_dir=tmp_path / "relicflow-data", prefect_port=port, inbox_settle_s=0.0)
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    catalogue.dispose()
    settings.inbox.mkdir(parents=True)
    return settings


def test_a_strangers_server_on_the_port_is_not_used_only_this_installations_recorded_one(installed: Settings) -> None:
    stranger = _stranger_url()
    assert httpx.get(f"{stranger}/health").status_code == 200  # it answers on our prefect_port
    mine = catalogue_identity(installed)
    theirs = str(uuid.uuid4())
    claim_server(stranger, theirs)
    assert "PREFECT_API_URL" not in prefect_environment(installed, identity=mine)
    # a record in our data dir naming a live process, but the server there is claimed for another catalogue
    record_server(installed, url=stranger, pid=os.getpid(), identity=mine)
    assert own_server(installed, mine) is None
    assert "PREFECT_API_URL" not in prefect_environment(installed, identity=mine)
    # once the server there is ours (what `relicflow serve` does), it is used
    claim_server(stranger, mine)
    assert server_catalogue(stranger) == mine
    assert prefect_environment(installed, identity=mine)["PREFECT_API_URL"] == stranger
    # ... but not after its serve is gone (a dead pid: a stale record) or has removed the record
    record_server(installed, url=stranger, pid=_dead_pid(), identity=mine)
    assert own_server(installed, mine) is None
    record_server(installed, url=stranger, pid=os.getpid(), identity=mine)
    forget_server(installed, pid=os.getpid())
    assert not server_record_path(installed).exists() and own_server(installed, mine) is None
    claim_server(stranger, theirs)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
