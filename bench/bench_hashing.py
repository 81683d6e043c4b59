"""How much hashing and duplicate search cost next to decoding, measured in one run on this machine.

Not a test: it prints ratios (which survive a change of machine better than times) and the times
behind them. Run: ``.venv/bin/python bench/bench_hashing.py [--images 12] [--codes 1000000]``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.cleanup import normalise_for_viewing  # noqa: E402
from tasks.hashing import HammingIndex, hamming_distance, near_duplicates, perceptual_hashes  # noqa: E402
from tasks.validation import decode_and_validate  # noqa: E402


def synthetic_photo(seed: int, width: int, height: int) -> bytes:
    """A JPEG with photo-like structure (smooth shapes plus sensor noise), different for each seed."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (9, 12, 3), dtype=np.uint8))
    base = coarse.resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(base.filter(ImageFilter.GaussianBlur(8)), np.int16)
    pixels = pixels + rng.normal(0, 6, (height, width, 1)).astype(np.int16)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def median_seconds(action: Callable[[], object], repeats: int = 3) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def full_decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def draft_decode(data: bytes, min_side: int = 256) -> Image.Image:
    """JPEG DCT-domain downscale (1/2, 1/4 or 1/8) keeping the short side >= ``min_side``."""
    image = Image.open(io.BytesIO(data))
    scale = max(s for s in (1, 2, 4, 8) if min(image.size) // s >= min_side)
    image.draft("RGB", (image.width // scale, image.height // scale))
    image.load()
    return image


def bench_images(count: int, width: int, height: int) -> None:
    photos = [synthetic_photo(seed, width, height) for seed in range(count)]
    mean_mb = sum(map(len, photos)) / count / 1e6
    # Draft mode skips the inverse DCT and upsampling, not Huffman decoding: the noisier (bigger) the
    # file, the less it saves. These files carry sensor-like noise, as camera files do.
    print(f"images: {count} synthetic JPEGs of {width} x {height} ({width * height / 1e6:.0f} MP), q90, "
          f"{mean_mb:.1f} MB each")
    decode = hashing = validate = draft = 0.0
    draft_distances = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, data in enumerate(photos):
            path = Path(scratch) / f"{index}.jpg"
            path.write_bytes(data)
            decode += median_seconds(lambda: full_decode(data))
            validate += median_seconds(lambda: decode_and_validate(path, max_pixels=200_000_000))
            normalised, _ = normalise_for_viewing(decode_and_validate(path, max_pixels=200_000_000))
            hashing += median_seconds(lambda: perceptual_hashes(normalised))
            draft += median_seconds(lambda: draft_decode(data))
            full_hash = perceptual_hashes(normalised).phash
            draft_distances.append(hamming_distance(full_hash, perceptual_hashes(draft_decode(data)).phash))
    per = 1000 / count
    print(f"  plain decode (Image.open + load)          {decode * per:8.1f} ms/image")
    print(f"  decode_and_validate                       {validate * per:8.1f} ms/image   "
          f"= {validate / decode:.2f}x plain decode")
    print(f"  perceptual_hashes (pHash + dHash)         {hashing * per:8.1f} ms/image   "
          f"perceptual_hashes / plain decode = {hashing / decode:.2f}x")
    print(f"  draft-mode decode (short side >= 256)     {draft * per:8.1f} ms/image   "
          f"draft-mode decode / full decode = {draft / decode:.3f}x")
    print(f"  pHash distance, draft vs full decode: max {max(draft_distances)}, "
          f"median {statistics.median(draft_distances)}")


def bench_search(code_count: int, queries: int, max_distance: int) -> None:
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 2**64, code_count, dtype=np.uint64)
    candidates = [(index, f"{int(code):016x}") for index, code in enumerate(codes)]
    picks = rng.integers(0, code_count, queries)
    query_codes = [f"{int(codes[i]) ^ (1 << int(rng.integers(0, 64))):016x}" for i in picks]  # 1 bit off
    print(f"search: {code_count:,} random 64-bit codes, radius {max_distance}, {queries} queries")
    start = time.perf_counter()
    index = HammingIndex.from_pairs(candidates)
    build = time.perf_counter() - start
    start = time.perf_counter()
    for query, expected in zip(query_codes, picks, strict=True):
        hits = index.search(query, max_distance=max_distance)
        assert (int(expected), 1) in hits
    per_query = (time.perf_counter() - start) / queries
    one_shot = median_seconds(lambda: near_duplicates(query_codes[0], candidates, max_distance=max_distance), repeats=2)
    print(f"  HammingIndex.from_pairs (once)            {build * 1000:8.1f} ms")
    print(f"  near_duplicates over {code_count:,} codes (index built): {per_query * 1000:.2f} ms/query")
    print(f"  near_duplicates(query, list of pairs), conversion included: {one_shot * 1000:.1f} ms/call "
          f"= {one_shot / per_query:.0f}x an indexed query")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--radius", type=int, default=10)
    args = parser.parse_args()
    bench_images(args.images, args.width, args.height)
    bench_search(args.codes, args.queries, args.radius)


if __name__ == "__main__":
    main()
