"""A review gate acts on the catalogue it was started for, and says while it waits what it waits for.

Real parts: two SQLite catalogues (two installations) and the session's real Prefect server; the gate
flow runs as a real flow run against it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.review_gate import publish_gate_report, refresh_gate_report, review_gate_flow
from flows.mint import mint_flow
from relicflow.catalogue import Catalogue
from relicflow.catalogue.models import AuditEntry
from relicflow.settings import Settings, load_settings
from tasks.gate_report import gate_artifact_key
from tests.relicflow.test_catalogue import World

pytestmark = pytest.mark.usefixtures("prefect_server")


def installation(tmp_path: Path, name: str) -> Iterator[tuple[Settings, World]]:
    # each installation its own SQLite catalogue, also in the PostgreSQL pass (whose one test database the
    # settings fixture puts in RELICFLOW_DATABASE_URL): two installations never share a catalogue
    (tmp_path / name).mkdir(parents=True, exist_ok=True)
    settings = load_settings(data_dir=tmp_path / name, review_port=8100,
                             database_url=f"sqlite:///{tmp_path / name / 'catalogue.sqlite3'}")
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    users = {"alice": catalogue.add_user("alice", "not-a-real-hash", "reviewer")}
    world = World(catalogue=catalogue, db_path=Path(settings.database_url.removeprefix("sqlite:///")), users=users,
                  _n=itertools.count(1))
    try:
        yield settings, world
    finally:
        catalogue.dispose()


@pytest.fixture
def x(tmp_path: Path, settings: Settings) -> Iterator[tuple[Settings, World]]:  # settings: clean RELICFLOW_* env
    yield from installation(tmp_path, "x")


@pytest.fixture
def y(tmp_path: Path, settings: Settings) -> Iterator[tuple[Settings, World]]:
    yield from installation(tmp_path, "y")


def test_a_gate_for_another_catalogue_refuses_and_changes_nothing(x: tuple[Settings, World], y: tuple[Settings, World]) -> None:
    _, wx = x
    settings_y, wy = y
    x_id, y_id = wx.catalogue.identity(), wy.catalogue.identity()
    assert x_id != y_id
    # Y's ingest run: every item decided, so a gate evaluated against Y would complete it (the bug)
    run = wy.run()
    wy.decided("approve", run)
    audit_before = wy.count(AuditEntry)

    state = review_gate_flow(ingest_run_id=run, start_mint=False, settings=settings_y, catalogue_id=x_id, return_state=True)

    assert state.is_failed()
    message = state.message or ""
    assert x_id in message and y_id in message and str(settings_y.data_dir) in message
    assert "refuses" in message and "拒绝执行" in message  # English and Chinese
    ingest_run = wy.catalogue.ingest_run(run)
    assert ingest_run is not None and ingest_run.gate_completed_at is None
    assert wy.count(AuditEntry) == audit_before

    # the same gate started for Y completes: the refusal above is the identity check, nothing else
    done = review_gate_flow(ingest_run_id=run, start_mint=False, settings=settings_y, catalogue_id=y_id, return_state=True)
    assert done.is_completed()
    assert wy.catalogue.ingest_run(run).gate_completed_at is not None  # type: ignore[union-attr]


def test_a_mint_run_for_another_catalogue_refuses(x: tuple[Settings, World], y: tuple[Settings, World]) -> None:
    _, wx = x
    settings_y, wy = y
    approved = wy.decided("approve", wy.run())
    state = mint_flow(settings=settings_y, catalogue_id=wx.catalogue.identity(), return_state=True)
    assert state.is_failed() and wx.catalogue.identity() in (state.message or "")
    assert wy.catalogue.item_status(approved).value == "approved"


def _artifacts(run_id: int, identity: str) -> list[str]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[gate_artifact_key(run_id, identity)])))
    return [str(a.data) for a in sorted(found, key=lambda a: a.created)]


def test_the_gate_artifact_shows_counts_and_links_and_follows_the_decisions(y: tuple[Settings, World]) -> None:
    settings, w = y
    run = w.run()
    first, second = w.awaiting(run), w.awaiting(run)
    w.quarantined(run)
    identity = w.catalogue.identity()

    published = publish_gate_report(w.catalogue, run, settings, flow_run_id=None, identity=identity)
    assert published is not None
    [shown] = _artifacts(run, identity)
    assert "| awaiting_review | 2 |" in shown and "| quarantined | 1 |" in shown and identity in shown
    assert f"{settings.review_url}/items/{first})" in shown and f"{settings.review_url}/items/{second})" in shown

    seen: dict[int, str] = {}
    refresh_gate_report(w.catalogue, run, None, settings, seen)
    w.catalogue.record_decision(first, reviewer_id=w.users["alice"], decision="approve")
    refresh_gate_report(w.catalogue, run, None, settings, seen)
    refresh_gate_report(w.catalogue, run, None, settings, seen)  # nothing changed since: no new version
    versions = _artifacts(run, identity)
    assert len(versions) == 3
    latest = versions[-1]
    assert "| awaiting_review | 1 |" in latest and "| approved | 1 |" in latest
    assert f"/items/{first})" not in latest and f"/items/{second})" in latest  # only the undecided are listed
