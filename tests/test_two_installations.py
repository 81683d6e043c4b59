"""Two installations on one machine: each one-off command reports to its own `relicflow serve`, and each
review gate acts only on its own catalogue.

Real processes: two `relicflow serve` supervisors (each with its Prefect server, deployments runner, review
app and sandbox issuer) on their own loopback ports and data dirs, and one-off `relicflow ingest` and
`relicflow mint` run as subprocesses from each installation's folder. Installation B's one-off ingest is
even configured with A's Prefect port (the old trap: whatever answers there was used); it must still
report to B's own server, which B's serve recorded in B's data dir.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image
from test_serve_gate import free_port, wait_for

from relicflow.catalogue import Catalogue
from relicflow.installation import catalogue_tag, server_record_path
from relicflow.settings import load_settings
from tasks.gate_report import gate_artifact_key

pytestmark = pytest.mark.slow


class Installation:
    def __init__(self, home: Path) -> None:
        self.home = home  # commands run from here; the data dir is the default ./relicflow-data
        home.mkdir(parents=True)
        self.data = home / "relicflow-data"
        self.scans = home / "scans"
        self.scans.mkdir()
        self.ports = {"PREFECT_PORT": free_port(), "REVIEW_PORT": free_port(), "SANDBOX_ISSUER_PORT": free_port()}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RELICFLOW_", "PREFECT_"))}
        self.env.update({f"RELICFLOW_{k}": str(v) for k, v in self.ports.items()})
        self.env.update({"RELICFLOW_CONFIG": str(home / "none.toml"), "RELICFLOW_INBOX_SETTLE_S": "0",
                         "RELICFLOW_INGEST_INTERVAL_S": "3600", "RELICFLOW_MINT_INTERVAL_S": "3600",
                         "RELICFLOW_GATE_RECONCILE_INTERVAL_S": "2", "RELICFLOW_LOCALE": "en",
                         "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                         "PREFECT_RUNNER_POLL_FREQUENCY": "2"})  # the deployments runner picks up gate runs sooner
        self.review = f"http://127.0.0.1:{self.ports['REVIEW_PORT']}"
        self.prefect = f"http://127.0.0.1:{self.ports['PREFECT_PORT']}/api"
        self.serve: subprocess.Popen[str] | None = None

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "relicflow.cli", *args], cwd=self.home, env={**self.env, **(env or {})},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def start(self) -> None:
        log = open(self.home / "serve.out", "a")  # noqa: SIM115 - closed with the process
        self.serve = subprocess.Popen([sys.executable, "-m", "relicflow.cli", "serve"], cwd=self.home, env=self.env,
                                      stdout=log, stderr=subprocess.STDOUT, text=True)

    def ready(self) -> bool:
        assert self.serve is not None and self.serve.poll() is None, (self.home / "serve.out").read_text(errors="replace")
        try:
            return (httpx.get(f"{self.review}/healthz", timeout=2).status_code == 200 and server_record_path(self.settings).exists()
                    and httpx.get(f"{self.prefect}/deployments/name/review-gate/review-gate", timeout=2).status_code == 200)
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.serve is not None and self.serve.poll() is None:
            self.serve.send_signal(signal.SIGTERM)

    def wait_stopped(self) -> None:
        if self.serve is not None:
            self.serve.wait(timeout=60)

    @property
    def settings(self):  # type: ignore[no-untyped-def]
        return load_settings(data_dir=self.data)

    def catalogue(self) -> Catalogue:
        return Catalogue.from_settings(self.settings)

    def flow_runs(self, **filters: object) -> list[dict]:
        r = httpx.post(f"{self.prefect}/flow_runs/filter", json=filters, timeout=10)
        r.raise_for_status()
        return r.json()

    def diagnosis(self, *extra: str) -> str:
        """What to read when a wait times out on a loaded CI machine: the last lines of serve's logs."""
        parts = list(extra)
        for log in (self.home / "serve.out", self.data / "deployments.log"):
            if log.exists():
                parts.append(f"--- {log.name} ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]))
        return "\n".join(parts)

    def has_flow_run(self, flow_run_id: str) -> bool:
        return httpx.get(f"{self.prefect}/flow_runs/{flow_run_id}", timeout=10).status_code == 200


def mark(what: str, started: float) -> None:
    """Phase times on stdout (pytest -s): figures for the report, never asserted."""
    print(f"[two installations] {what}: {time.monotonic() - started:.1f} s", flush=True)


def finished(proc: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, out + err
    return out, err


def test_two_installations_each_one_off_ingest_reports_home_and_each_gate_acts_on_its_own_catalogue(tmp_path: Path) -> None:
    t0 = time.monotonic()
    a, b = Installation(tmp_path / "museum-a"), Installation(tmp_path / "museum-b")
    for inst in (a, b):
        finished(inst.run("init"))
    ids = {"a": a.catalogue().identity(), "b": b.catalogue().identity()}
    assert ids["a"] != ids["b"]
    try:
        a.start()
        b.start()
        wait_for("both installations to serve", lambda: a.ready() and b.ready(), timeout_s=120)
        mark("serving", t0)
        for inst, colours in ((a, ["maroon", "olive"]), (b, ["navy"])):
            for i, colour in enumerate(colours):
                img = Image.new("RGB", (480, 360), colour)
                img.paste(Image.new("RGB", (90 + 50 * i, 70), "white"), (40 * i + 20, 60))
                img.save(inst.scans / f"2025.{i}.1_front.jpg", quality=90)
        # B's one-off ingest looks at A's port: before, it would have reported there
        # (from a folder of their own: serve's start-up scan of the inbox must not take them first)
        ingest_a = a.run("ingest", str(a.scans))
        ingest_b = b.run("ingest", str(b.scans), env={"RELICFLOW_PREFECT_PORT": str(a.ports["PREFECT_PORT"])})
        _, err_a = finished(ingest_a)
        _, err_b = finished(ingest_b)
        assert f"Prefect server: {a.prefect}" in err_a and f"Data dir: {a.data}" in err_a
        assert f"Prefect server: {b.prefect}" in err_b and f"Data dir: {b.data}" in err_b

        mark("one-off ingests done", t0)
        runs = {}
        for name, inst, other in (("a", a, b), ("b", b, a)):
            catalogue = inst.catalogue()
            [cli_run] = [r for r in (catalogue.ingest_run(i) for i in range(1, 5)) if r is not None and (r.label or "").startswith("cli-")]
            catalogue.dispose()
            runs[name] = cli_run.id
            assert cli_run.flow_run_id and inst.has_flow_run(cli_run.flow_run_id) and not other.has_flow_run(cli_run.flow_run_id)
            try:
                gate = wait_for(f"{name}'s gate to suspend", lambda inst=inst, cli_run=cli_run: [
                    r for r in inst.flow_runs(flows={"name": {"any_": ["review-gate"]}}) if r["name"] == f"review-gate-ingest-{cli_run.id}"
                    and r["state"]["name"] == "Suspended"], timeout_s=90)[0]
            except AssertionError as timed_out:
                raise AssertionError(inst.diagnosis(str(timed_out), "--- one-off ingest ---", {"a": err_a, "b": err_b}[name])) from None
            assert catalogue_tag(ids[name]) in gate["tags"] and gate["parameters"]["catalogue_id"] == ids[name]
            assert other.flow_runs(flow_runs={"tags": {"all_": [catalogue_tag(ids[name])]}}) == []  # nothing of it on the other
        mark("both gates suspended", t0)
        # A's gate says what it waits for: its two items, linked in A's review app
        key = gate_artifact_key(runs["a"], ids["a"])
        artifact = httpx.get(f"{a.prefect}/artifacts/{key}/latest", timeout=10).json()
        assert "| awaiting_review | 2 |" in artifact["data"] and f"{a.review}/items/" in artifact["data"]

        # approve everything in A, through A's catalogue; A's reconciler resumes A's gate
        catalogue_a = a.catalogue()
        reviewer = catalogue_a.add_user("chen", "not-a-real-hash", "reviewer")
        first, second = catalogue_a.items_awaiting_review()
        catalogue_a.record_decision(first.id, reviewer_id=reviewer, decision="approve")
        # serve's reconciler brings the waiting gate's artifact up to date
        wait_for("A's gate artifact to follow the decision", lambda: "| approved | 1 |" in httpx.get(
            f"{a.prefect}/artifacts/{key}/latest", timeout=10).json()["data"], timeout_s=30)
        catalogue_a.record_decision(second.id, reviewer_id=reviewer, decision="approve")
        wait_for("A's gate to complete", lambda: [r for r in a.flow_runs(flows={"name": {"any_": ["review-gate"]}})
                                                  if r["name"] == f"review-gate-ingest-{runs['a']}" and r["state"]["type"] == "COMPLETED"])
        assert catalogue_a.ingest_run(runs["a"]).gate_completed_at is not None  # type: ignore[union-attr]
        catalogue_a.dispose()
        mark("A approved, its gate completed", t0)
        # B is untouched: its gate still waits, its items still await review
        catalogue_b = b.catalogue()
        assert catalogue_b.ingest_run(runs["b"]).gate_completed_at is None  # type: ignore[union-attr]
        assert len(catalogue_b.items_awaiting_review()) == 1
        catalogue_b.dispose()
        [gate_b] = [r for r in b.flow_runs(flows={"name": {"any_": ["review-gate"]}}) if r["name"] == f"review-gate-ingest-{runs['b']}"]
        assert gate_b["state"]["name"] == "Suspended"

        mark("B checked", t0)
        # a one-off mint in A reports to A's server (it used to start a temporary one: Prefect imported first)
        _, err = finished(a.run("mint"))
        assert f"Prefect server: {a.prefect}" in err
        one_off = a.flow_runs(flows={"name": {"any_": ["mint"]}}, flow_runs={"deployment_id": {"is_null_": True}})
        assert len(one_off) == 1 and catalogue_tag(ids["a"]) in one_off[0]["tags"]
        mark("one-off mint done", t0)
    finally:
        a.stop()
        b.stop()
        a.wait_stopped()
        b.wait_stopped()
        mark("both stopped", t0)
    assert not server_record_path(a.settings).exists() and not server_record_path(b.settings).exists()
