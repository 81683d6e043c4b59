"""Fixtures shared across the suite: settings on a temporary data dir, a real Prefect server, and a
real S3 API (moto) on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
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


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite catalogue migrated once per session. Replaying every migration costs ~0.15 s, and hundreds of
    tests each start from a new catalogue; a copy of this one (catalogue_template.copy_migrated) costs ~0.02 s. The tests
    of the migrations themselves migrate their own files."""
    from relicflow.catalogue import Catalogue

    path = tmp_path_factory.mktemp("catalogue-template") / "catalogue.sqlite3"
    catalogue = Catalogue(f"sqlite:///{path}")
    catalogue.migrate()
    catalogue.dispose()
    return path


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


# moto runs in a child process, not a thread of the test process: its server buffers whole request
# bodies in Python memory, which would swamp tracemalloc measurements of our streaming uploads, and it
# would compete with the client for the GIL. The child exits when its stdin closes, even if pytest dies.
_MOTO_CHILD = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@pytest.fixture(scope="session")
def moto_s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a moto S3 server on 127.0.0.1 (random port), shared by the whole session."""
    log_path = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log_path, "wb") as log:
        child = subprocess.Popen([sys.executable, "-c", _MOTO_CHILD], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=log, text=True)
    assert child.stdout is not None and child.stdin is not None
    port = child.stdout.readline().strip()
    if not port.isdigit():
        child.kill()
        pytest.fail(f"moto server did not start:\n{Path(log_path).read_text()[-2000:]}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()


@pytest.fixture
def aws_test_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials, and no host AWS configuration leaking into boto3."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """A folder that outlives the run for what a person should look at afterwards (browser screenshots):
    test-artifacts/<test name> in the checkout, or under RELICFLOW_TEST_ARTIFACTS when CI sets it."""
    root = Path(os.environ.get("RELICFLOW_TEST_ARTIFACTS") or Path(__file__).resolve().parent.parent / "test-artifacts")
    folder = root / request.node.name.replace("/", "_")[:120]
    folder.mkdir(parents=True, exist_ok=True)
    return folder
