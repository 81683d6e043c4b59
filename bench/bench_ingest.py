"""Ingest pipeline cost per scan, as ratios measured in one run (machines are shared and noisy).

    .venv/bin/python bench/bench_ingest.py [N]

Prints: full per-scan pipeline (ingest_scan: store original, all pixel work, enrichment, catalogue commit)
/ plain decode of the same files, in process and with the pixel work in an isolated worker process (as
the ingest flow runs it), and the stages / plain decode. Runs the stage functions directly (no
Prefect), on a temporary SQLite catalogue and local object store.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from relicflow.catalogue import Catalogue
from relicflow.settings import load_settings
from relicflow.storage import open_store
from tasks.inbox import sha256_of_file
from tasks.ingest_scan import IngestContext, ingest_scan
from tasks.scan_analysis import AnalysisLimits, analyse_scan
from tasks.validation import decode_and_validate


def make_scans(folder: Path, n: int, size: tuple[int, int] = (4000, 3000)) -> list[Path]:
    rng = np.random.default_rng(7)
    paths = []
    for i in range(n):
        base = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize(size, Image.Resampling.BICUBIC)
        noise = rng.normal(0, 6, size=(size[1], size[0], 3))
        img = Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8))
        path = folder / f"scan-{i:03d}.jpg"
        img.save(path, quality=92)
        paths.append(path)
    return paths


def timed(fn, paths: list[Path]) -> float:  # noqa: ANN001
    start = time.perf_counter()
    for p in paths:
        fn(p)
    return (time.perf_counter() - start) / len(paths)


def main(n: int = 8) -> None:
    from relicflow.isolated import IsolatedWorkers
    from tasks.intake import ScanWork

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "inbox").mkdir()
        scans = make_scans(root / "inbox", n)
        settings = load_settings(data_dir=root / "data")
        catalogue = Catalogue.from_settings(settings)
        catalogue.migrate()
        limits = AnalysisLimits(settings.max_image_pixels, settings.access_long_side, settings.thumbnail_long_side)

        def plain(p: Path) -> None:
            with Image.open(p) as im:
                im.load()

        decode = timed(plain, scans)
        validate = timed(lambda p: decode_and_validate(p, max_pixels=settings.max_image_pixels), scans)
        analysis = timed(lambda p: analyse_scan(p, limits, sha256="0" * 64, size_bytes=p.stat().st_size), scans)

        def full(ctx: IngestContext) -> float:
            def one(p: Path) -> None:
                sha = sha256_of_file(p)
                st = p.stat()
                item_id, _ = catalogue.register_received(sha256=sha, file_name=p.name, inbox_path=str(p), size_bytes=st.st_size,
                                                         ingest_run_id=None)
                ingest_scan(ctx, ScanWork(item_id=item_id, sha256=sha, size_bytes=st.st_size, file_name=p.name, inbox_path=str(p),
                                          path=p, stat_key=(st.st_size, st.st_mtime_ns, st.st_ctime_ns)))
            return timed(one, scans)

        in_process = full(IngestContext(settings=settings, catalogue=catalogue, store=open_store(settings)))
        for p in scans:  # the same files again, as new content, through an isolated worker
            p.write_bytes(p.read_bytes() + b"\0")
        with IsolatedWorkers(1, memory_limit_mb=settings.decode_memory_limit_mb, preload=("tasks.scan_analysis:warm_up",)) as workers:
            workers.run(analyse_scan, str(scans[0]), limits, sha256="0" * 64, size_bytes=0, timeout_s=60)  # start-up
            isolated = full(IngestContext(settings=settings, catalogue=catalogue, store=open_store(settings), workers=workers))
        print(f"scans: {n} synthetic JPEGs, 4000 x 3000 (12 MP), q92, {scans[0].stat().st_size / 1e6:.1f} MB each")
        print(f"  plain decode                     {decode * 1000:7.1f} ms/scan   = 1.00x")
        print(f"  decode_and_validate              {validate * 1000:7.1f} ms/scan   = {validate / decode:.2f}x plain decode")
        print(f"  analyse_scan (all pixel work)    {analysis * 1000:7.1f} ms/scan   = {analysis / decode:.2f}x plain decode")
        print(f"  full ingest_scan, in process     {in_process * 1000:7.1f} ms/scan   = {in_process / decode:.2f}x plain decode")
        print(f"  full ingest_scan, isolated       {isolated * 1000:7.1f} ms/scan   = {isolated / decode:.2f}x plain decode")
        print(f"pipeline / plain decode = {isolated / decode:.1f}x; isolated / in-process = {isolated / in_process:.2f}x")
        catalogue.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)
