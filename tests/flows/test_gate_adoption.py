"""Serve adopts ingest runs whose gate never started, and two starts of one gate are one flow run.

A one-off `relicflow ingest` that ends while serve is still registering its deployments (or is
stopped) finds no gate deployment: its batch would wait in the review app with no gate run at all.
Real parts: the session's Prefect server, with the review-gate deployment applied for these tests only
(nothing serves it here: its runs stay scheduled, which is all these tests look at), and a real
SQLite catalogue.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from flows.review_gate import reconcile_gates, review_gate_flow, start_review_gate
from relicflow.catalogue import Catalogue
from relicflow.catalogue.models import ItemStatus
from relicflow.installation import catalogue_tag
from relicflow.settings import Settings, load_settings
from tests.relicflow.test_catalogue import World

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def world(tmp_path: Path, settings: Settings) -> Iterator[World]:  # settings: clean RELICFLOW_* env
    own = load_settings(data_dir=tmp_path / "museum", database_url=f"sqlite:///{tmp_path / 'catalogue.sqlite3'}")
    catalogue = Catalogue.from_settings(own)
    catalogue.migrate()
    users = {"alice": catalogue.add_user("alice", "not-a-real-hash", "reviewer")}
    try:
        yield World(catalogue=catalogue, db_path=tmp_path / "catalogue.sqlite3", users=users, _n=itertools.count(1))
    finally:
        catalogue.dispose()


@pytest.fixture
def gate_deployment(world: World) -> Iterator[uuid.UUID]:
    """The review-gate deployment as serve registers it, removed afterwards: other tests expect none."""
    identity = world.catalogue.identity()
    deployment_id = review_gate_flow.to_deployment(name="review-gate", parameters={"catalogue_id": identity},
                                                   tags=[catalogue_tag(identity)]).apply()
    try:
        yield deployment_id
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment_id)


def finished_run(world: World, *, awaiting: int = 1) -> int:
    run = world.run()
    for _ in range(awaiting):
        world.awaiting(run)
    world.catalogue.finish_ingest_run(run, {"awaiting_review": awaiting})
    return run


def flow_run(flow_run_id: str) -> object:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(uuid.UUID(flow_run_id))


def test_runs_awaiting_a_gate_are_finished_ungated_and_have_something_to_review(world: World) -> None:
    cat = world.catalogue
    waiting = finished_run(world)
    still_ingesting = world.run()
    world.awaiting(still_ingesting)  # its own ingest starts the gate when it ends
    nothing_to_review = world.run()
    world.quarantined(nothing_to_review)
    cat.finish_ingest_run(nothing_to_review, {})
    gated = finished_run(world)
    cat.set_gate_flow_run(gated, "gate-1")
    completed = finished_run(world)  # a completed gate is never reopened by adoption (reopen floors)
    cat.set_gate_flow_run(completed, "gate-2")
    cat.complete_gate(completed)

    assert [r.id for r in cat.runs_awaiting_a_gate()] == [waiting]


def test_serve_starts_the_gate_a_one_off_ingest_could_not(world: World, gate_deployment: uuid.UUID) -> None:
    cat = world.catalogue
    run = finished_run(world, awaiting=2)

    done = reconcile_gates(cat)

    assert done["adopted"] == [run]
    ingest_run = cat.ingest_run(run)
    assert ingest_run is not None and ingest_run.gate_flow_run_id
    gate = flow_run(ingest_run.gate_flow_run_id)
    assert gate.name == f"review-gate-ingest-{run}" and gate.deployment_id == gate_deployment  # type: ignore[attr-defined]
    assert gate.parameters == {"ingest_run_id": run, "catalogue_id": cat.identity()}  # type: ignore[attr-defined]
    assert catalogue_tag(cat.identity()) in gate.tags  # type: ignore[attr-defined]
    # adopted once: the next pass watches it like any other open gate
    assert reconcile_gates(cat)["adopted"] == [] and [r.id for r in cat.open_gates()] == [run]


def test_two_starts_of_one_gate_are_one_flow_run_and_a_replacement_is_another(world: World, gate_deployment: uuid.UUID) -> None:
    cat = world.catalogue
    run = finished_run(world)
    # the ingest run that just ended and serve's reconciler, at the same moment
    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(lambda _: start_review_gate(cat, run), range(2))
    assert first is not None and first == second

    # a gate run that ended badly is replaced by a new flow run, not handed back
    assert start_review_gate(cat, run) == first  # a late start that saw no gate yet still gets the same one
    replacement = start_review_gate(cat, run, replaces=first)
    assert replacement is not None and replacement != first
    assert cat.ingest_run(run).gate_flow_run_id == replacement  # type: ignore[union-attr]


def test_without_a_gate_deployment_nothing_is_adopted_and_the_run_stays_waiting(world: World) -> None:
    cat = world.catalogue
    run = finished_run(world)
    assert reconcile_gates(cat)["adopted"] == []
    assert [r.id for r in cat.runs_awaiting_a_gate()] == [run]
    assert cat.items_awaiting_review()[0].status == ItemStatus.awaiting_review
