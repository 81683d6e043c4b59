"""The review gate: a flow run per ingest run that waits, Suspended in Prefect, until reviewers decide.

The catalogue is the record: the gate only counts undecided items there. While any remain the run
suspends (its process exits; nothing is held in memory). The review app resumes it when the last item of
the batch is decided; a reconciler (``reconcile_gates``, run by ``relicflow serve``) resumes any gate
whose resume was lost, e.g. because every process was restarted in between, and replaces a gate run
that ended without completing. On completion the gate
starts the mint deployment, when there is one.

Every gate run is for one catalogue (``catalogue_id``, tag ``catalogue:<uuid>``): one that opens another
installation's catalogue fails and changes nothing there. While it waits, the gate publishes what it
waits for (counts by status, links to the undecided items) as the artifact ``review-gate-run-<id>-<catalogue>``,
which the reconciler updates as decisions come in.
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
from relicflow.errors import CatalogueMismatch
from relicflow.installation import catalogue_tag, check_catalogue
from relicflow.settings import Settings, load_settings
from tasks.gate_report import GateItem, gate_artifact_key, gate_report_markdown

MINT_DEPLOYMENT = "mint/mint"
GATE_DEPLOYMENT = "review-gate/review-gate"
SUSPEND_TIMEOUT_S = 90 * 24 * 3600  # reviewers may take weeks; the reconciler keeps long waits honest
log = logging.getLogger("relicflow.gate")


@flow(name="review-gate", persist_result=True)
def review_gate_flow(ingest_run_id: int, start_mint: bool = True, settings: Settings | None = None,
                     catalogue_id: str | None = None) -> dict[str, Any]:
    """Complete when every item of the ingest run is decided, else suspend; only on ``catalogue_id``'s catalogue."""
    logger = get_run_logger()
    settings = settings or load_settings()
    catalogue = Catalogue.from_settings(settings)
    try:
        identity = check_catalogue(catalogue, catalogue_id, settings)
    except CatalogueMismatch as exc:
        logger.error("%s", exc)
        catalogue.dispose()
        raise
    undecided = catalogue.undecided_count(ingest_run_id)
    if undecided:
        logger.info("ingest run %s: %d item(s) await review; suspending until the reviewers have decided", ingest_run_id, undecided)
        publish_gate_report(catalogue, ingest_run_id, settings, flow_run_id=_current_flow_run_id(), identity=identity)
        catalogue.dispose()
        # A fresh key each time: a resumed run that still finds undecided items must suspend again.
        suspend_flow_run(timeout=SUSPEND_TIMEOUT_S, key=f"await-review-{uuid.uuid4().hex}")
        return {"ingest_run_id": ingest_run_id, "status": "waiting"}  # not reached: suspension exits the run
    counts = catalogue.count_by_status(ingest_run_id=ingest_run_id)
    catalogue.complete_gate(ingest_run_id)
    publish_gate_report(catalogue, ingest_run_id, settings, flow_run_id=_current_flow_run_id(), identity=identity)
    catalogue.dispose()
    create_markdown_artifact(
        key="review-gate", description=f"Review decisions for ingest run {ingest_run_id}",
        markdown="\n".join([f"## Ingest run {ingest_run_id}: all items decided", "", "| status | items |", "|---|---|"]
                           + [f"| {status} | {n} |" for status, n in sorted(counts.items())]),
    )
    if start_mint and counts.get("approved"):
        _start_mint(logger, identity)
    return {"ingest_run_id": ingest_run_id, "status": "decided", "counts": counts}


def _current_flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.get_id()) if flow_run.get_id() else None


def publish_gate_report(catalogue: Catalogue, ingest_run_id: int, settings: Settings, *, flow_run_id: str | None,
                        identity: str | None = None) -> str | None:
    """Publish (a new version of) the gate's artifact: counts by status and links to the undecided items.

    Best effort: a failure is logged and returns None; it never stops a gate or a decision. Returns the
    markdown published, so a caller can skip publishing the same text again.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate

    from relicflow.catalogue.reviews import UNDECIDED

    try:
        items = catalogue.items(ingest_run_id=ingest_run_id)
        counts: dict[str, int] = {}
        for item in items:
            counts[item.status] = counts.get(item.status, 0) + 1
        undecided = [GateItem(i.id, i.status, i.accession_number, min((f.file_name for f in i.files), default=""))
                     for i in items if i.status in UNDECIDED]
        markdown = gate_report_markdown(ingest_run_id, counts, undecided, settings.review_url, catalogue_id=identity)
        with get_client(sync_client=True) as client:
            client.create_artifact(ArtifactCreate(
                key=gate_artifact_key(ingest_run_id, identity), type="markdown", data=markdown,
                description=f"What the review gate of ingest run {ingest_run_id} waits for",
                flow_run_id=uuid.UUID(flow_run_id) if flow_run_id else None))
        return markdown
    except Exception:
        log.exception("could not publish the review-gate artifact of ingest run %s; the gate goes on", ingest_run_id)
        return None


def _start_mint(logger: Any, identity: str) -> None:
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        run = run_deployment(MINT_DEPLOYMENT, parameters={"catalogue_id": identity}, tags=[catalogue_tag(identity)],
                             timeout=0, as_subflow=False)
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


def start_review_gate(catalogue: Catalogue, run_id: int, logger: Any = log, *, replaces: str | None = None) -> str | None:
    """Start the gate run for an ingest run and record it; None where no gate deployment exists.

    Two processes may start the same gate at once (the ingest run that just ended and serve's
    reconciler adopting it): the idempotency key, the same for both, makes Prefect hand both the same
    flow run. A replacement for the gate run ``replaces`` (which ended badly) gets a key of its own.
    The caller says what it replaces, as it saw it: read here, it could be the gate the other process
    has just started, and the two starts would be two gates.
    """
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    identity = catalogue.identity()
    try:
        gate = run_deployment(GATE_DEPLOYMENT, parameters={"ingest_run_id": run_id, "catalogue_id": identity},
                              tags=[catalogue_tag(identity)], timeout=0, as_subflow=False,
                              flow_run_name=f"review-gate-ingest-{run_id}",
                              idempotency_key=f"review-gate:{identity}:{run_id}:{replaces or 'first'}")
    except ObjectNotFound:
        logger.info("no %s deployment on this Prefect server (`relicflow serve` is not running, or still starting): "
                    "reviewers decide in the review app, the mint flow reads approvals from the catalogue, and "
                    "serve starts this run's gate when it runs", GATE_DEPLOYMENT)
        return None
    catalogue.set_gate_flow_run(run_id, str(gate.id))
    logger.info("review gate started for ingest run %s: flow run %s waits for the reviewers", run_id, gate.id)
    return str(gate.id)


def reconcile_gates(catalogue: Catalogue, settings: Settings | None = None,
                    published: dict[int, str] | None = None) -> dict[str, list[int]]:
    """Bring every open gate in line with the catalogue (run by `relicflow serve` every few seconds).

    A finished ingest run with items to review and no gate gets one (its own start found no gate
    deployment: a one-off ingest while serve was starting or stopped).
    A suspended gate whose batch is decided is resumed (its resume was lost: every process restarted, or
    Prefect was down when the last decision came). A gate run that ended without completing (crashed,
    e.g. its runner stopped while the run was suspending; failed; cancelled; or unknown to Prefect) is
    replaced by a fresh one, which completes at once or waits again. A completed run is recorded.
    With ``settings``, a waiting gate's artifact is published again when what it waits for has changed
    (``published``: counts last published per ingest run, kept by the caller between calls).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound

    done: dict[str, list[int]] = {"adopted": [], "resumed": [], "restarted": [], "completed": []}
    for run in catalogue.runs_awaiting_a_gate():
        if start_review_gate(catalogue, run.id):
            done["adopted"].append(run.id)
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
                if start_review_gate(catalogue, run.id, replaces=run.gate_flow_run_id):
                    done["restarted"].append(run.id)
            elif state.is_paused() and catalogue.undecided_count(run.id) == 0 and resume_gate(run.gate_flow_run_id):
                done["resumed"].append(run.id)
            elif state.is_paused() and settings is not None:
                refresh_gate_report(catalogue, run.id, run.gate_flow_run_id, settings, published)
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


def refresh_gate_report(catalogue: Catalogue, run_id: int, flow_run_id: str | None, settings: Settings,
                         published: dict[int, str] | None) -> None:
    """Publish the waiting gate's artifact again if its batch's counts changed since the last time
    (``published``: counts last published, per ingest run; None: publish every time)."""
    fingerprint = repr(sorted(catalogue.count_by_status(ingest_run_id=run_id).items()))  # one cheap query
    if published is not None and published.get(run_id) == fingerprint:
        return
    if publish_gate_report(catalogue, run_id, settings, flow_run_id=flow_run_id, identity=catalogue.identity()) is not None \
            and published is not None:
        published[run_id] = fingerprint
