"""The review app with a queue of a hundred thousand items: latency of its pages and of a decision, and page sizes.

Builds a SQLite catalogue of ``--items`` items with bulk inserts (a mix of statuses, ingest runs, grades,
warnings, duplicate candidates, graded relics with one approval), starts the review app as `relicflow review`
serves it (relicflow/review_server.py) on loopback with each of ``--workers`` process counts in turn, signs in
one reviewer per client, and measures p50/p95 with 1 and
``--clients`` concurrent clients (closed loop: each client sends its next request when the last answered):
the queue's first page, a filtered page, a search, an item page, and a decision (the POST plus following
its 303 to the next item). Then the same queue page on a catalogue of ``--small`` items, to show that a
page's size does not depend on the catalogue's. Not a test: it prints figures and ratios to the targets.
Run: ``.venv/bin/python bench/review_queue.py [--items 100000] [--clients 20] [--requests 10] [--workers 1,2]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from relicflow.catalogue import Catalogue  # noqa: E402
from relicflow.catalogue.models import (  # noqa: E402
    DuplicateCandidate, Image, IngestRun, Item, ItemWarning, MetadataRecord, ReviewDecision, SourceFile,
)
from relicflow.passwords import hash_password  # noqa: E402
from relicflow.settings import load_settings  # noqa: E402
from tasks.object_views import seen_state, ImageVersion  # noqa: E402

PASSWORD = "bench-password-123"
RUNS = 40
STATUS_MIX = (("awaiting_review", 0.60), ("approved", 0.20), ("minted", 0.08), ("rejected", 0.04), ("sent_back", 0.03),
              ("quarantined", 0.04), ("received", 0.01))
TARGET_PAGE_P95_MS, TARGET_DECISION_P95_MS = 150, 300


def _status(rng: random.Random) -> str:
    x, acc = rng.random(), 0.0
    for status, share in STATUS_MIX:
        acc += share
        if x < acc:
            return status
    return STATUS_MIX[0][0]


def build(catalogue: Catalogue, items: int, reviewers: int, seed: int = 8) -> dict[str, object]:
    """Bulk rows straight into the tables: what ingest would have left, without the hours ingest would take."""
    rng = random.Random(seed)
    pw = hash_password(PASSWORD)
    users = [catalogue.add_user(f"r{n:02d}", pw, "reviewer") for n in range(reviewers)]
    senior = catalogue.add_user("senior", pw, "reviewer")
    now = datetime.now(timezone.utc) - timedelta(days=30)
    with catalogue.engine.begin() as conn:
        conn.execute(insert(IngestRun.__table__), [  # type: ignore[arg-type]
            {"id": r + 1, "started_at": now, "finished_at": now, "inbox": "/inbox", "outcome": "completed", "summary": {}}
            for r in range(RUNS)])
    rows: dict[str, list[dict[str, object]]] = {k: [] for k in ("items", "images", "files", "records", "warnings", "dups", "decisions")}

    def flush(conn: object) -> None:
        for key, model in (("items", Item), ("images", Image), ("files", SourceFile), ("records", MetadataRecord),
                           ("warnings", ItemWarning), ("dups", DuplicateCandidate), ("decisions", ReviewDecision)):
            if rows[key]:
                conn.execute(insert(model.__table__), rows[key])  # type: ignore[attr-defined]
                rows[key].clear()

    grades = ("一级", "二级", "三级", "一般", "未定级", None)
    with catalogue.engine.begin() as conn:
        for n in range(1, items + 1):
            status = _status(rng)
            grade = rng.choices(grades, weights=(3, 7, 30, 40, 15, 5))[0]
            run = 1 + (n - 1) * RUNS // items
            sha = hashlib.sha256(f"bench-{n}".encode()).hexdigest()
            sheet = rng.random() < 0.92
            accession = f"GZ{2000 + n // 5000}.{n:06d}" if sheet or rng.random() < 0.5 else None
            created = now + timedelta(seconds=n)
            rows["items"].append({
                "id": n, "status": status, "accession_number": accession, "accession_number_source": "sheet" if sheet and accession else
                ("file_name" if accession else None), "title": f"青花缠枝莲纹梅瓶 {n}" if sheet else None, "grade": grade,
                "required_approvals": 2 if grade == "一级" else 1, "ingest_run_id": run, "attempts": 0, "record_version": 1,
                "created_at": created, "updated_at": created})
            rows["images"].append({
                "id": n, "item_id": n, "version": 1, "sha256": sha, "size_bytes": 1_000_000, "format": "TIFF", "width": 4000,
                "height": 3000, "mode": "RGB", "bits_per_sample": 8, "original_key": f"originals/{sha}",
                "access_key": f"derivatives/{sha}/access.jpg", "thumbnail_key": f"derivatives/{sha}/thumbnail.jpg",
                "derivation": [], "view": "front", "view_label": "正面", "file_name": f"scan_{n:06d}_正面.tif", "created_at": created})
            path = f"/inbox/run{run}/scan_{n:06d}_正面.tif"
            rows["files"].append({"item_id": n, "sha256": sha, "file_name": f"scan_{n:06d}_正面.tif", "inbox_path": path,
                                  "path_key": hashlib.sha256(path.encode()).hexdigest(), "size_bytes": 1_000_000, "seen_at": created})
            if sheet:
                rows["records"].append({"item_id": n, "source": "accession_sheet", "version": 1, "created_at": created,
                                        "data": {"title": f"青花缠枝莲纹梅瓶 {n}", "grade": grade or "", "period": "明永乐"}})
            if rng.random() < 0.15:
                rows["warnings"].append({"item_id": n, "code": "soft_focus", "message_en": "The image is soft.",
                                         "message_zh": "图像不够清晰。", "details": {"image_sha256": sha}})
            if n > 10 and rng.random() < 0.03:
                rows["dups"].append({"item_id": n, "other_item_id": rng.randrange(1, n), "algorithm": "phash", "distance": 4})
            if status == "awaiting_review" and grade == "一级" and rng.random() < 0.5:  # waiting for a second approver
                seen = seen_state([ImageVersion(n, "front", "正面", 1, sha)], 1)
                rows["decisions"].append({"item_id": n, "image_sha256": sha, "reviewer_id": senior, "decision": "approve",
                                          "reason": "", "seen": seen, "decided_at": created + timedelta(days=1)})
            if n % 5000 == 0:
                flush(conn)
        flush(conn)
    with catalogue.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    with catalogue.read_session() as s:
        awaiting_single = list(s.scalars(select(Item.id).where(Item.status == "awaiting_review", Item.required_approvals == 1)
                                         .order_by(Item.id)))
        awaiting = list(s.scalars(select(Item.id).where(Item.status == "awaiting_review")))
    return {"users": users, "awaiting_single": awaiting_single, "awaiting": awaiting}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVER = """
import sys
sys.path.insert(0, {root!r})
from relicflow.review_server import serve_review
from relicflow.settings import load_settings
serve_review(load_settings(data_dir={data_dir!r}, inbox_settle_s=0.0, review_port={port}, review_workers={workers}))
"""


def start_server(data_dir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """The review app as `relicflow review` serves it (relicflow/review_server.py), with ``workers`` processes."""
    port = free_port()
    code = SERVER.format(root=str(Path(__file__).resolve().parents[1]), data_dir=str(data_dir), port=port, workers=workers)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("RELICFLOW_", "PREFECT_API"))},
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the review app did not start")


def signed_in(base: str, username: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]*)"', page.text).group(1)  # type: ignore[union-attr]
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303, r.text[:500]
    csrf = re.search(r'name="csrf_token" value="([^"]*)"', client.get("/").text).group(1)  # type: ignore[union-attr]
    return client, csrf


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure(clients: list[tuple[httpx.Client, str]], requests: int, action: Callable[[int, httpx.Client, str, int], None]) -> list[float]:
    """Each client runs ``action`` ``requests`` times, all clients at once; latencies in ms."""
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        client, csrf = clients[k]
        try:
            for n in range(requests):
                start = time.perf_counter()
                action(k, client, csrf, n)
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    latencies.append(elapsed)
        except BaseException as exc:  # reported after the run, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return latencies


def get_ok(client: httpx.Client, path: str) -> httpx.Response:
    r = client.get(path)
    if r.status_code != 200:
        raise RuntimeError(f"GET {path}: {r.status_code}")
    return r


def run_scenarios(base: str, data: dict[str, object], *, clients_n: int, requests: int,
                  taken: dict[int, int]) -> dict[str, dict[int, list[float]]]:
    """``taken``: how many of each client's items earlier runs decided (carried over from one server to the next)."""
    users = [f"r{n:02d}" for n in range(clients_n)]
    sessions = [signed_in(base, u) for u in users]
    awaiting = list(data["awaiting"])  # type: ignore[call-overload]
    single = list(data["awaiting_single"])  # type: ignore[call-overload]
    rng = random.Random(1)
    pools = {k: single[k::clients_n] for k in range(clients_n)}  # each client decides its own items
    searches = ["GZ2003.0157", "梅瓶 4211", "scan_0777", "%_", "gz2010.05"]

    def decision(k: int, client: httpx.Client, csrf: str, _n: int) -> None:
        item_id = pools[k][taken[k]]
        taken[k] += 1
        r = client.post(f"/items/{item_id}/decision?run=3", data={"decision": "approve", "csrf_token": csrf})
        if r.status_code != 303:
            raise RuntimeError(f"decision on {item_id}: {r.status_code} {r.text[:300]}")
        get_ok(client, r.headers["location"])

    scenarios: dict[str, Callable[[int, httpx.Client, str, int], None]] = {
        "queue first page": lambda k, c, _t, n: None if get_ok(c, "/") else None,
        "filtered page": lambda k, c, _t, n: None if get_ok(c, f"/?warnings=1&run={1 + (k + n) % RUNS}") else None,
        "search": lambda k, c, _t, n: None if get_ok(c, f"/?q={searches[(k + n) % len(searches)]}") else None,
        "item page": lambda k, c, _t, n: None if get_ok(c, f"/items/{rng.choice(awaiting)}") else None,
        "decision (POST + next item)": decision,
    }
    results: dict[str, dict[int, list[float]]] = {}
    for name, action in scenarios.items():
        results[name] = {}
        for n in (1, clients_n):
            measure(sessions[:n], 2, action)  # warm up
            results[name][n] = measure(sessions[:n], requests if n > 1 else requests * 4, action)
    for client, _ in sessions:
        client.close()
    return results


def page_sizes(base: str) -> dict[str, int]:
    client, _ = signed_in(base, "r00")
    # full pages in both catalogues: what a page holds must not depend on how many items wait behind it
    sizes = {"queue first page": len(client.get("/").content), "filtered page": len(client.get("/?warnings=1").content),
             "search": len(client.get("/?q=梅瓶").content)}
    client.close()
    return sizes


def one_catalogue(items: int, clients_n: int, requests: int, *, workers: Sequence[int]
                  ) -> tuple[dict[int, dict[str, dict[int, list[float]]]], dict[str, int], float]:
    """Build a catalogue, then measure it served by each number of ``workers`` in turn (none: page sizes only)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp) / "data", inbox_settle_s=0.0)
        catalogue = Catalogue.from_settings(settings)
        catalogue.migrate()
        start = time.perf_counter()
        data = build(catalogue, items, reviewers=clients_n)
        build_s = time.perf_counter() - start
        catalogue.dispose()
        results: dict[int, dict[str, dict[int, list[float]]]] = {}
        taken = {k: 0 for k in range(clients_n)}
        sizes: dict[str, int] = {}
        for n in workers or (1,):
            proc, base = start_server(settings.data_dir, n)
            try:
                if workers:
                    results[n] = run_scenarios(base, data, clients_n=clients_n, requests=requests, taken=taken)
                sizes = sizes or page_sizes(base)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    return results, sizes, build_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000, help="the catalogue the page size is compared with")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=10, help="requests per client at full concurrency (x4 for one client)")
    parser.add_argument("--workers", default="1,2", help="review app processes to measure with, in turn (review_workers)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    print(f"building a catalogue of {args.items:,} items ...", flush=True)
    by_workers, sizes, build_s = one_catalogue(args.items, args.clients, args.requests, workers=workers)
    print(f"built in {build_s:.1f} s; the review app as `relicflow review` serves it, on loopback; closed-loop clients")
    figures: dict[str, object] = {}
    for n_workers, results in by_workers.items():
        print(f"\nreview_workers = {n_workers} ({os.cpu_count()} cores, shared with the clients)")
        print(f"{'':32}{'1 client p50/p95 ms':>22}{f'{args.clients} clients p50/p95 ms':>26}{'target p95':>12}{'p95/target':>12}")
        for name, by_n in results.items():
            one, many = by_n[1], by_n[args.clients]
            target = TARGET_DECISION_P95_MS if name.startswith("decision") else TARGET_PAGE_P95_MS
            p = {n: (statistics.median(v), percentile(v, 95)) for n, v in by_n.items()}
            figures[f"{name} / {n_workers} workers"] = {str(n): {"p50_ms": round(a, 1), "p95_ms": round(b, 1), "requests": len(by_n[n])}
                                                        for n, (a, b) in p.items()}
            print(f"{name:32}{p[1][0]:>10.1f} /{p[1][1]:>8.1f}{p[args.clients][0]:>14.1f} /{p[args.clients][1]:>8.1f}"
                  f"{target:>12}{p[args.clients][1] / target:>12.2f}")
            assert len(one) and len(many)
    print(f"\nbuilding a catalogue of {args.small:,} items for the page-size comparison ...", flush=True)
    _, small_sizes, _ = one_catalogue(args.small, 1, 1, workers=())
    print(f"\n{'page size (bytes)':32}{f'{args.items:,} items':>16}{f'{args.small:,} items':>16}{'ratio':>10}")
    for name, size in sizes.items():
        print(f"{name:32}{size:>16,}{small_sizes[name]:>16,}{size / small_sizes[name]:>10.2f}")
    figures["page_bytes"] = {"large": sizes, "small": small_sizes}
    if args.json:
        print(json.dumps(figures, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
