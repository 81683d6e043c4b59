"""`relicflow serve`: every part of the embedded default, as child processes of one supervisor.

Children: a local Prefect server on SQLite under the data dir, the deployments runner (scheduled ingest,
mint and fixity, and the review gate), the review app and, unless an issuer URL is configured, the sandbox
issuer. The supervisor also resumes review gates whose resume was lost (every process restarted while a
batch waited), prints the URLs, and on Ctrl-C or SIGTERM stops the children in reverse order.

The Prefect server is recorded in the data dir (``prefect/server.json``) and claimed for this catalogue,
so one-off commands of this installation report to it and those of another installation never do
(relicflow/installation.py); the record is removed on stop.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

from relicflow.installation import claim_server, forget_server, record_server
from relicflow.settings import Settings

log = logging.getLogger("relicflow.serve")


@dataclass
class Child:
    name: str
    argv: list[str]
    health_url: str | None
    process: subprocess.Popen[bytes] | None = None


def serve_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PREFECT_HOME": str(settings.prefect_home),
        "PREFECT_API_URL": f"http://127.0.0.1:{settings.prefect_port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "RELICFLOW_DATA_DIR": str(settings.data_dir),
        "RELICFLOW_LOCALE": settings.locale,
    })
    return env


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _wait_healthy(child: Child, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.process is not None and child.process.poll() is not None:
            return False
        if child.health_url is None:
            return True
        try:
            if httpx.get(child.health_url, timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def _stop(children: list[Child]) -> None:
    for child in reversed(children):
        if child.process is None or child.process.poll() is not None:
            continue
        try:
            os.killpg(child.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for child in reversed(children):
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()


def serve_everything(settings: Settings, *, console: Console) -> int:
    from relicflow.catalogue import Catalogue
    from relicflow.i18n import t
    from relicflow.storage import open_store

    def say(key: str, **kw: Any) -> None:
        # values are paths and messages, not rich markup; long paths stay on one line
        console.print(t(key, settings.locale, **{k: escape(str(v)) for k, v in kw.items()}), soft_wrap=True)

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.inbox.mkdir(parents=True, exist_ok=True)
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    identity = catalogue.identity()
    store = open_store(settings)
    _check_record(catalogue, store, say)
    ports = [("prefect", settings.prefect_port, "PREFECT_PORT"), ("review", settings.review_port, "REVIEW_PORT")]
    if not settings.issuer_url:
        ports.append(("sandbox-issuer", settings.sandbox_issuer_port, "SANDBOX_ISSUER_PORT"))
    for name, port, setting in ports:
        if port_in_use("127.0.0.1", port):
            say("cli.serve.port_busy", port=port, name=name, setting=setting)
            return 1

    env = serve_environment(settings)
    os.environ.update({k: env[k] for k in ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK")})
    py = sys.executable
    cli = [py, "-m", "relicflow.cli"]
    children = [Child("prefect", [py, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(settings.prefect_port)],
                      f"http://127.0.0.1:{settings.prefect_port}/api/health")]
    if not settings.issuer_url:
        children.append(Child("sandbox-issuer", [*cli, "sandbox-issuer"], f"{settings.effective_issuer_url}/healthz"))
    children += [Child("review", [*cli, "review"], f"{settings.review_url}/healthz"),
                 Child("deployments", [*cli, "deployments"], None)]

    say("cli.serve.starting")
    stopping = False

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started: list[Child] = []
    recorded_pid: int | None = None
    try:
        for child in children:
            logfile = open(settings.data_dir / f"{child.name}.log", "ab")  # noqa: SIM115 - owned by the child
            child.process = subprocess.Popen(child.argv, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
            started.append(child)
            if not _wait_healthy(child, timeout_s=90):
                code = child.process.poll()
                say("cli.serve.died", name=child.name, code=code if code is not None else "timeout")
                console.print(f"  log: {escape(str(settings.data_dir / (child.name + '.log')))}", soft_wrap=True)
                return 1
            if child.name == "prefect":  # before any child runs a flow: one-off commands may use it from now on
                assert child.process is not None
                try:
                    claim_server(env["PREFECT_API_URL"], identity)
                    recorded_pid = record_server(settings, url=env["PREFECT_API_URL"], pid=child.process.pid, identity=identity).pid
                except (httpx.HTTPError, OSError):  # one-off commands then use temporary servers: slower, never wrong
                    log.exception("could not record this installation's Prefect server; one-off commands will not use it")
        _ingest_now(console)
        say("cli.serve.ready", review=settings.review_url, prefect=f"http://127.0.0.1:{settings.prefect_port}",
            issuer=settings.effective_issuer_url, inbox=settings.inbox)
        next_reconcile = 0.0
        published: dict[int, str] = {}  # what each waiting gate's artifact last said
        while True:
            for child in started:
                code = child.process.poll() if child.process else None
                if code is not None:
                    say("cli.serve.died", name=child.name, code=code)
                    console.print(f"  log: {escape(str(settings.data_dir / (child.name + '.log')))}", soft_wrap=True)
                    return 1
            if time.monotonic() >= next_reconcile:
                _reconcile(catalogue, settings, published)
                next_reconcile = time.monotonic() + settings.gate_reconcile_interval_s
            time.sleep(1.0)
    except KeyboardInterrupt:
        stopping = True
        return 0
    finally:
        if recorded_pid is not None:
            forget_server(settings, pid=recorded_pid)
        _stop(started)
        catalogue.dispose()
        if stopping:
            say("cli.serve.stopped")


def _check_record(catalogue: Any, store: Any, say: Any) -> None:
    """Verify the review record at start; anchor its head when it holds, say loudly when it does not.
    The scheduled checks are the review app's (``review_ui.record_watch``), one of serve's children."""
    from relicflow.audit_record import verify_record, write_anchor

    try:
        report = verify_record(catalogue, store)
        if report.ok:
            write_anchor(catalogue, store, reason="relicflow serve")
            say("cli.serve.record_ok", entries=report.head.entries if report.head else 0, anchors=report.anchors_checked)
        else:
            say("cli.serve.record_broken", summary=report.summary())
    except Exception:  # the store or catalogue is unreachable right now; the next check tries again
        log.exception("could not verify the review record")


def _ingest_now(console: Console, timeout_s: float = 60.0) -> None:
    """Scan the inbox once at start-up instead of waiting a whole interval for the first scheduled run."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            run_deployment("ingest/ingest", timeout=0, as_subflow=False, flow_run_name="ingest-at-start")
            return
        except ObjectNotFound:  # the deployments runner has not registered yet
            time.sleep(1.0)
    console.print("[yellow]the ingest deployment did not appear in time; the schedule will run it[/yellow]")


def _reconcile(catalogue: Any, settings: Settings, published: dict[int, str]) -> None:
    from flows.review_gate import reconcile_gates

    try:
        done = reconcile_gates(catalogue, settings, published)
        if any(done.values()):
            log.info("review gates reconciled with the catalogue: %s", done)
    except Exception:  # Prefect may be busy; decisions are safe in the catalogue, try again later
        log.exception("review-gate reconciliation failed; will retry")


def run_deployments(settings: Settings) -> None:
    """Register the deployments with Prefect and run them here until stopped (blocking)."""
    from prefect import serve

    serve(*deployments(settings), print_starting_message=False)


def deployments(settings: Settings) -> list[Any]:
    """The deployments `relicflow serve` runs: scheduled ingest, mint and fixity, and the review gate."""
    from flows.fixity import fixity_flow
    from flows.ingest import ingest_flow
    from flows.mint import mint_flow
    from flows.review_gate import review_gate_flow
    from relicflow.installation import catalogue_identity, catalogue_tag

    # every run of these deployments is for this catalogue: a run that finds another one refuses
    identity = catalogue_identity(settings)
    mine = {"parameters": {"catalogue_id": identity}, "tags": [catalogue_tag(identity)]}
    return [
        ingest_flow.to_deployment(name="ingest", interval=timedelta(seconds=settings.ingest_interval_s), **mine),
        mint_flow.to_deployment(name="mint", interval=timedelta(seconds=settings.mint_interval_s), **mine),
        review_gate_flow.to_deployment(name="review-gate", **mine),
        fixity_flow.to_deployment(name="fixity", interval=timedelta(seconds=settings.fixity_interval_s),
                                  description="Re-check stored objects against their SHA-256; remove stale temporary files.", **mine),
    ]
