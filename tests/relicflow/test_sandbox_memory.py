"""The sandbox issuer in its own process under 1 GB chunked bodies: its memory stays where it was.

The body is made on the fly by the sender and never held anywhere; the sandbox's peak resident set
(VmHWM, reset after warming up) is compared with its resident set when idle.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chunked_sender import send_chunked

GIB = 1024 ** 3
ALLOWED_GROWTH = 50 * 1024 * 1024

_CHILD = """
import socket, sys
from pathlib import Path
import uvicorn
from relicflow.sandbox_issuer import create_sandbox_app
app = create_sandbox_app(ledger_path=Path(sys.argv[1]), api_key="memory-key", secret=b"memory-secret")
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).run(sockets=[sock])
"""


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[tuple[str, int]]:
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path / "ledger.sqlite3")], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    port = child.stdout.readline().strip()
    try:
        assert port.isdigit(), "the sandbox process did not start"
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
        yield url, child.pid
    finally:
        child.terminate()
        child.wait(timeout=10)


def _idle_rss_then_reset_peak(url: str, pid: int) -> int:
    """Warm the code paths up with small refused requests, then start counting the peak from now."""
    for headers in ({"X-Api-Key": "stranger"}, {"X-Api-Key": "memory-key"}):
        send_chunked(url, "/v1/mint-batches", headers, 2 * 1024 * 1024)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current resident set
    return _status_kib(pid, "VmRSS") * 1024


@pytest.mark.slow
@pytest.mark.parametrize(("who", "headers", "status"), [
    ("anonymous", {"X-Api-Key": "stranger"}, 401),
    ("known key, over the size limit", {"X-Api-Key": "memory-key"}, 413),
])
def test_a_1gb_chunked_body_does_not_grow_the_sandbox(sandbox_process: tuple[str, int], who: str, headers: dict[str, str],
                                                      status: int) -> None:
    url, pid = sandbox_process
    idle = _idle_rss_then_reset_peak(url, pid)
    outcome = send_chunked(url, "/v1/mint-batches", headers, GIB)
    peak = _status_kib(pid, "VmHWM") * 1024
    print(f"{who}: idle RSS {idle / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB, "
          f"body bytes sent before the answer {outcome.sent / 2**20:.0f} MiB of {GIB / 2**20:.0f} MiB")
    assert outcome.status == status
    assert peak - idle < ALLOWED_GROWTH
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # and it still serves
