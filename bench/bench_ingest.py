"""Ingest pipeline cost per scan, as ratios measured in one run (machines are shared and noisy).

    .venv/bin/python bench/bench_ingest.py [N]

Prints: full per-scan pipeline (ingest_scan: store original, validate, hash, derivatives, quality,
enrichment, catalogue commit) / plain decode of the same files, and its stages / plain decode. Runs the
stage functions directly (no Prefect), on a temporary SQLite catalogue and local object store.
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
from tasks.ingest_scan import IngestContext, derive_access_copies, hash_scan, ingest_scan
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
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "inbox").mkdir()
        scans = make_scans(root / "inbox", n)
        settings = load_settings(data_dir=root / "data")
        catalogue = Catalogue.from_settings(settings)
        catalogue.migrate()
        ctx = IngestContext(settings=settings, catalogue=catalogue, store=open_store(settings))

        def plain(p: Path) -> None:
            with Image.open(p) as im:
                im.load()

        decode = timed(plain, scans)
        validate = timed(lambda p: decode_and_validate(p, max_pixels=settings.max_image_pixels), scans)
        hashing = timed(lambda p: hash_scan(decode_and_validate(p, max_pixels=settings.max_image_pixels)), scans) - validate

        def derive(p: Path) -> None:
            decoded = decode_and_validate(p, max_pixels=settings.max_image_pixels)
            _, ops, normalised = hash_scan(decoded)
            derive_access_copies(ctx, decoded, sha256_of_file(p), (normalised, ops))

        derivatives = timed(derive, scans) - validate - hashing

        def full(p: Path) -> None:
            sha = sha256_of_file(p)
            item_id, _ = catalogue.register_received(sha256=sha, file_name=p.name, inbox_path=str(p), size_bytes=p.stat().st_size, ingest_run_id=None)
            ingest_scan(ctx, item_id, p, sha, p.stat().st_size, p.name)

        pipeline = timed(full, scans)
        print(f"scans: {n} synthetic JPEGs, 4000 x 3000 (12 MP), q92, {scans[0].stat().st_size / 1e6:.1f} MB each")
        print(f"  plain decode                     {decode * 1000:7.1f} ms/scan   = 1.00x")
        print(f"  decode_and_validate              {validate * 1000:7.1f} ms/scan   = {validate / decode:.2f}x plain decode")
        print(f"  + normalise and hash             {hashing * 1000:7.1f} ms/scan   = {hashing / decode:.2f}x plain decode")
        print(f"  + access copy and thumbnail      {derivatives * 1000:7.1f} ms/scan   = {derivatives / decode:.2f}x plain decode")
        print(f"  full ingest_scan (all stages, storage, catalogue commit) {pipeline * 1000:7.1f} ms/scan")
        print(f"pipeline / plain decode = {pipeline / decode:.1f}x")
        catalogue.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)
