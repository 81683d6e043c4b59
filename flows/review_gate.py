"""The review gate: a flow run per ingest run that waits, Suspended in Prefect, until reviewers decide.

The catalogue is the record: the gate only counts undecided items there. While any remain the run
suspends (its process exits; nothing is held in memory). The review app resumes it when the last item of
the batch is decided; a reconciler (``reconcile_gates``, run by ``relicflow serve``) resumes any gate
whose resume was lost, e.g. because every process was restarted in between, and replaces a gate run
that ended without completing. On completion the gate
starts the mint deployment, when there is one.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import suspend_flow_run

from relicflow.catalogue import Catalogue
from relicflow.settings import Settings, load_settings

MINT_DEPLOYMENT = "mint/mint"
GATE_DEPLOYMENT = "review-gate/review-gate"
SUSPEND_TIMEOUT_S = 90 * 24 * 3600  # reviewers may take weeks; the reconciler keeps long waits honest
log = logging.getLogger("relicflow.gate")


@flow(name="review-gate", persist_result=True)
def review_gate_flow(ingest_run_id: int, start_mint: bool = True, settings: Settings | None = None) -> dict[str, Any]:
    logger = get_run_logger()
    settings = settings or load_settings()
    catalogue = Catalogue.from_settings(settings)
    undecided = catalogue.undecided_count(ingest_run_id)
    if undecided:
        logger.info("ingest run %s: %d item(s) await review; suspending until the reviewers have decided", ingest_run_id, undecided)
        catalogue.dispose()
        # A fresh key each time: a resumed run that still finds undecided items must suspend again.
        suspend_flow_run(timeout=SUSPEND_TIMEOUT_S, key=f"await-review-{uuid.uuid4().hex}")
        return {"ingest_run_id": ingest_run_id, "status": "waiting"}  # not reached: suspension exits the run
    counts = catalogue.count_by_status(ingest_run_id=ingest_run_id)
    catalogue.complete_gate(ingest_run_id)
    catalogue.dispose()
    create_markdown_artifact(
        key="review-gate", description=f"Review decisions for ingest run {ingest_run_id}",
        markdown="\n".join([f"## Ingest run {ingest_run_id}: all items decided", "", "| status | items |", "|---|---|"]
                           + [f"| {status} | {n} |" for status, n in sorted(counts.items())]),
    )
    if start_mint and counts.get("approved"):
        _start_mint(logger)
    return {"ingest_run_id": ingest_run_id, "status": "decided", "counts": counts}


def _start_mint(logger: Any) -> None:
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        run = run_deployment(MINT_DEPLOYMENT, timeout=0, as_subflow=False)
        logger.info("mint flow run %s started for the approved items", run.id)
    except ObjectNotFound:
        logger.info("no %s deployment; approved items wait for the next `relicflow mint`", MINT_DEPLOYMENT)


def resume_gate(flow_run_id: str) -> bool:
    """Resume a suspended gate run; False when it is not waiting (already resumed, finished, unknown)."""
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run

    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(uuid.UUID(flow_run_id))
        except Exception:
            log.exception("could not read gate flow run %s from Prefect", flow_run_id)
            return False
        if run.state is None or not run.state.is_paused():
            return False
    resume_flow_run(uuid.UUID(flow_run_id))
    log.info("resumed review gate flow run %s", flow_run_id)
    return True


def start_review_gate(catalogue: Catalogue, run_id: int, logger: Any = log) -> str | None:
    """Start the gate run for an ingest run and record it; None where no gate deployment exists."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        gate = run_deployment(GATE_DEPLOYMENT, parameters={"ingest_run_id": run_id}, timeout=0, as_subflow=False,
                              flow_run_name=f"review-gate-ingest-{run_id}")
    except ObjectNotFound:
        logger.info("no %s deployment here (not under `relicflow serve`): reviewers decide in the review app; "
                    "the mint flow reads approvals from the catalogue", GATE_DEPLOYMENT)
        return None
    catalogue.set_gate_flow_run(run_id, str(gate.id))
    logger.info("review gate started for ingest run %s: flow run %s waits for the reviewers", run_id, gate.id)
    return str(gate.id)


def reconcile_gates(catalogue: Catalogue) -> dict[str, list[int]]:
    """Bring every open gate in line with the catalogue (run by `relicflow serve` every few seconds).

    A suspended gate whose batch is decided is resumed (its resume was lost: every process restarted, or
    Prefect was down when the last decision came). A gate run that ended without completing (crashed,
    e.g. its runner stopped while the run was suspending; failed; cancelled; or unknown to Prefect) is
    replaced by a fresh one, which completes at once or waits again. A completed run is recorded.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound

    done: dict[str, list[int]] = {"resumed": [], "restarted": [], "completed": []}
    with get_client(sync_client=True) as client:
        for run in catalogue.open_gates():
            assert run.gate_flow_run_id is not None
            try:
                state = client.read_flow_run(uuid.UUID(run.gate_flow_run_id)).state
            except ObjectNotFound:
                state = None
            if state is not None and state.type is StateType.COMPLETED:
                catalogue.complete_gate(run.id)
                done["completed"].append(run.id)
            elif state is None or state.type in (StateType.CRASHED, StateType.FAILED, StateType.CANCELLED):
                if start_review_gate(catalogue, run.id):
                    done["restarted"].append(run.id)
            elif state.is_paused() and catalogue.undecided_count(run.id) == 0 and resume_gate(run.gate_flow_run_id):
                done["resumed"].append(run.id)
    return done


def resume_gate_for_ingest_run(settings: Settings, ingest_run_id: int) -> None:
    """The review app's hook: the last item of this ingest run has just been decided.

    Without a Prefect server (PREFECT_API_URL unset) there is no gate run to resume; and if the server
    is down the call fails and is logged: `relicflow serve`'s reconciler resumes the gate later.
    """
    if not os.environ.get("PREFECT_API_URL"):
        log.info("no Prefect server configured; ingest run %s is decided, nothing to resume", ingest_run_id)
        return
    catalogue = Catalogue.from_settings(settings)
    try:
        run = catalogue.ingest_run(ingest_run_id)
        if run is not None and run.gate_flow_run_id:
            resume_gate(run.gate_flow_run_id)
    finally:
        catalogue.dispose()
