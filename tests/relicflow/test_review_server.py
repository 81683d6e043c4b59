"""`relicflow review` with several worker processes (review_workers): what one process knows, all know.

A real `relicflow review` on a free loopback port, its workers started by uvicorn's supervisor; a reviewer
signs in once and every request, whichever worker takes it, sees the same session."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from relicflow.review_server import settings_for_workers
from relicflow.settings import Settings, load_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def workers_of(pid: int) -> list[int]:
    """uvicorn's worker processes (spawned by multiprocessing; its resource tracker is not one)."""
    return [child for child in children_of(pid) if "spawn_main" in cmdline(child)]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_workers_rebuild_the_commands_settings_secrets_included(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", issuer_secret="a-real-signing-secret-0123456789",
                             issuer_api_key="key-42", review_workers=3, trusted_proxies=["10.0.0.1"], locale="en")
    rebuilt = Settings(**json.loads(settings_for_workers(settings)))
    assert rebuilt.issuer_secret.get_secret_value() == "a-real-signing-secret-0123456789"
    assert rebuilt.issuer_api_key.get_secret_value() == "key-42"
    assert (rebuilt.data_dir, rebuilt.review_workers, rebuilt.locale, rebuilt.database_url) == (
        settings.data_dir, 3, "en", settings.database_url)
    assert rebuilt.model_dump() == settings.model_dump()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="counts worker processes through /proc")
def test_two_workers_serve_one_review_app_with_shared_sessions(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELICFLOW_", "PREFECT_"))}
    env.update({"RELICFLOW_DATA_DIR": str(tmp_path / "data"), "RELICFLOW_CONFIG": str(tmp_path / "none.toml"),
                "RELICFLOW_REVIEW_PORT": str(port), "RELICFLOW_REVIEW_WORKERS": "2", "RELICFLOW_LOCALE": "en",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"})

    def cli(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "relicflow.cli", *args], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    cli("init")
    password = re.search(r"password \(shown once\): (\S+)", cli("users", "add", "chen", "--role", "reviewer")).group(1)  # type: ignore[union-attr]
    log = tmp_path / "review.out"
    proc = subprocess.Popen([sys.executable, "-m", "relicflow.cli", "review"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            workers = workers_of(proc.pid)
            try:
                if len(workers) >= 2 and httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"review app with two workers did not start: {workers}\n{log.read_text()}"
            time.sleep(0.5)
        assert len(workers_of(proc.pid)) == 2
        with httpx.Client(base_url=base, timeout=10) as client:
            token = re.search(r'name="csrf_token" value="([^"]*)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
            r = client.post("/login", data={"username": "chen", "password": password, "csrf_token": token})
            assert r.status_code == 303, r.text[:300]
            # new connections each time, so the kernel hands them to either worker: all see the session
            for _ in range(20):
                with httpx.Client(base_url=base, timeout=10, cookies=client.cookies) as fresh:
                    page = fresh.get("/")
                    assert page.status_code == 200 and "chen" in page.text, page.text[:300]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert children_of(proc.pid) == []
