"""`relicflow serve` as a user runs it: the review gate waits Suspended in Prefect, survives a restart of
every process, and the approved batch reaches the issuer exactly once.

Real processes throughout: `prefect server start`, the deployments runner, the review app and the sandbox
issuer, all started by the `relicflow serve` supervisor on free loopback ports.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from PIL import Image
from reviewer_browser import ReviewerBrowser

from relicflow.catalogue import Catalogue
from relicflow.issuer_client import IssuerClient
from relicflow.settings import load_settings

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Callable[[], object], timeout_s: float = 120.0) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


class Deployment:
    def __init__(self, tmp: Path) -> None:
        self.data = tmp / "data"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RELICFLOW_", "PREFECT_"))}
        self.ports = {"PREFECT_PORT": free_port(), "REVIEW_PORT": free_port(), "SANDBOX_ISSUER_PORT": free_port()}
        self.env.update({f"RELICFLOW_{k}": str(v) for k, v in self.ports.items()})
        self.env.update({"RELICFLOW_DATA_DIR": str(self.data), "RELICFLOW_CONFIG": str(tmp / "none.toml"),
                         "RELICFLOW_INBOX_SETTLE_S": "0", "RELICFLOW_INGEST_INTERVAL_S": "3600",
                         "RELICFLOW_MINT_INTERVAL_S": "3600", "RELICFLOW_LOCALE": "en",
                         "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"})
        self.review = f"http://127.0.0.1:{self.ports['REVIEW_PORT']}"
        self.prefect = f"http://127.0.0.1:{self.ports['PREFECT_PORT']}/api"
        self.issuer = f"http://127.0.0.1:{self.ports['SANDBOX_ISSUER_PORT']}"
        self.proc: subprocess.Popen[str] | None = None

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "relicflow.cli", *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def start(self, *args: str, health: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "relicflow.cli", *args], env=self.env, text=True,
                                     stdout=open(self.data / f"test-{args[0]}.out", "a"), stderr=subprocess.STDOUT)
        wait_for(f"{args[0]} to answer", lambda: self._healthy(health))
        if args[0] == "serve":  # and its deployments registered: a one-off ingest before that starts no gate
            wait_for("serve's deployments", lambda: httpx.get(f"{self.prefect}/deployments/name/review-gate/review-gate",
                                                              timeout=5).status_code == 200)

    def _healthy(self, url: str) -> bool:
        assert self.proc is not None and self.proc.poll() is None, (self.data / "test-serve.out").read_text(errors="replace")
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises SIGTERM after its graceful shutdown, so a plain review app ends "by signal"
        assert self.proc.wait(timeout=60) in (0, -signal.SIGTERM)
        self.proc = None

    def gate_runs(self) -> list[dict]:
        r = httpx.post(f"{self.prefect}/flow_runs/filter", json={"flows": {"name": {"any_": ["review-gate"]}}}, timeout=10)
        r.raise_for_status()
        return r.json()


def test_gate_waits_suspended_and_survives_restart_of_every_process(tmp_path: Path) -> None:
    d = Deployment(tmp_path)
    d.data.mkdir(parents=True)
    d.cli("init")
    password = re.search(r"password \(shown once\): (\S+)", d.cli("users", "add", "chen", "--role", "reviewer")).group(1)
    inbox = d.data / "inbox"
    for i, colour in enumerate(["maroon", "teal", "olive"]):
        img = Image.new("RGB", (500, 400), colour)
        img.paste(Image.new("RGB", (100 + 40 * i, 60), "white"), (30 * i, 50))
        img.save(inbox / f"2024.{i}.1_front.jpg", quality=90)
    (inbox / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    # the accession sheet: the mint holds back an item with no record of its own
    sheet = ["总登记号,藏品名称,级别,文件名"] + [f"2024.{i}.1,陶罐{i},三级,2024.{i}.1_front.jpg" for i in range(3)]
    (inbox / "accession_sheet.csv").write_text("\n".join(sheet) + "\n", encoding="utf-8")

    d.start("serve", health=f"{d.review}/healthz")
    # the scheduler creates the ingest and mint schedules' runs (it did not with SQLAlchemy 2.1)
    wait_for("scheduled runs", lambda: httpx.post(f"{d.prefect}/flow_runs/filter", timeout=10,
                                                  json={"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}}).json())
    # serve scans the inbox at start; the ingest run starts a gate run, which suspends
    gate = wait_for("a suspended review gate", lambda: [r for r in d.gate_runs() if r["state"]["name"] == "Suspended"])[0]
    catalogue = Catalogue(load_settings(data_dir=d.data).database_url)
    items = sorted(i.id for i in catalogue.items_awaiting_review())
    assert len(items) == 3 and catalogue.items(status="quarantined")
    reviewer = ReviewerBrowser(d.review)
    reviewer.log_in("chen", password)
    assert reviewer.decide(items[0], "approve").status_code == 303
    reviewer.close()
    # What a runner stopped mid-suspension leaves behind (seen under load): the gate run marked Crashed.
    r = httpx.post(f"{d.prefect}/flow_runs/{gate['id']}/set_state", timeout=10,
                   json={"state": {"type": "CRASHED", "name": "Crashed", "message": "runner stopped"}, "force": True})
    assert r.status_code in (200, 201), r.text
    d.stop()  # every process down while the batch waits

    # the review app alone, Prefect down: decisions are committed all the same (resuming fails, is logged)
    d.start("review", health=f"{d.review}/healthz")
    reviewer = ReviewerBrowser(d.review)
    reviewer.log_in("chen", password)
    assert reviewer.decide(items[1], "reject", "拍摄角度不全").status_code == 303
    assert reviewer.decide(items[2], "approve").status_code == 303
    reviewer.close()
    d.stop()
    assert [catalogue.item_status(i).value for i in items] == ["approved", "rejected", "approved"]

    # back up: serve's reconciler replaces the crashed gate run; the new one completes and starts the mint
    d.start("serve", health=f"{d.review}/healthz")
    wait_for("a replacement gate to complete", lambda: [r for r in d.gate_runs() if r["id"] != gate["id"] and r["state"]["type"] == "COMPLETED"])
    assert catalogue.ingest_run(1).gate_completed_at is not None and catalogue.open_gates() == []
    wait_for("the mint", lambda: all(catalogue.item_status(i).value == "minted" for i in (items[0], items[2])))
    settings = load_settings(data_dir=d.data, issuer_url=d.issuer)
    with IssuerClient.from_settings(settings) as client:
        refs = sorted(t.item_ref for t in client.list_tokens())
    assert refs == sorted(f"relicflow:item:{i}" for i in (items[0], items[2]))
    d.stop()

    # Second batch, reconciler off: it is the review app that resumes the gate when the last item is decided.
    d.env["RELICFLOW_GATE_RECONCILE_INTERVAL_S"] = "3600"
    d.start("serve", health=f"{d.review}/healthz")
    img = Image.new("RGB", (500, 400), "navy")
    img.paste(Image.new("RGB", (300, 100), "gold"), (100, 150))
    img.save(inbox / "2024.9.9_front.jpg", quality=90)
    sheet.append("2024.9.9,青花盘,三级,2024.9.9_front.jpg")
    (inbox / "accession_sheet.csv").write_text("\n".join(sheet) + "\n", encoding="utf-8")
    d.cli("ingest")  # a one-off run reports to serve's Prefect server, so it starts a gate too
    second = wait_for("a second suspended gate", lambda: [r for r in d.gate_runs() if r["state"]["name"] == "Suspended"])[0]
    [new_item] = [i.id for i in catalogue.items_awaiting_review()]
    reviewer = ReviewerBrowser(d.review)
    reviewer.log_in("chen", password)
    assert reviewer.decide(new_item, "approve").status_code == 303
    reviewer.close()
    wait_for("the review app to resume the gate", lambda: [r for r in d.gate_runs() if r["id"] == second["id"] and r["state"]["type"] == "COMPLETED"])
    wait_for("the second mint", lambda: catalogue.item_status(new_item).value == "minted")
    d.stop()
    catalogue.dispose()
    # serve verified the review record at each start, and it still holds after all of the above
    assert (d.data / "test-serve.out").read_text().count("Review record verified") >= 3
    assert "The review record holds" in d.cli("audit", "verify")
