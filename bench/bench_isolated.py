"""What isolating a scan's decoding in a worker process costs, as ratios measured in one run.

    .venv/bin/python bench/bench_isolated.py [--repeats 15]

Prints the start-up of one worker (relicflow.isolated's fork from its launcher, against
multiprocessing's forkserver and spawn), the overhead of an isolated call over the same call in-process
for a trivial function, for decoding a 12 MP JPEG and for making its 2048-px access JPEG, and the cost of
bringing large results back (should grow linearly). Not a test: machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import isolated_calls as calls  # noqa: E402  (bench/ is on sys.path: the script's directory)

from relicflow.isolated import IsolatedWorkers  # noqa: E402

PRELOAD = ["numpy", "PIL.Image", "cv2", "imagehash", "tasks.validation", "tasks.cleanup", "isolated_calls"]


def median_s(action: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def make_jpeg(path: Path, width: int, height: int) -> None:
    rng = np.random.default_rng(3)
    base = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((width, height))
    noisy = np.asarray(base, np.int16) + rng.normal(0, 6, (height, width, 1)).astype(np.int16)
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=90)


def bench_start_up(repeats: int) -> None:
    print("start-up of one worker (until it has answered a trivial call)")
    first_calls = []
    for _ in range(3):
        start = time.perf_counter()
        with IsolatedWorkers(1, memory_limit_mb=None, preload=PRELOAD) as pool:
            pool.run(calls.nothing, timeout_s=120)
            first_calls.append(time.perf_counter() - start)
    with IsolatedWorkers(1, memory_limit_mb=None, preload=PRELOAD) as pool:
        pool.run(calls.nothing, timeout_s=120)
        warm = median_s(lambda: pool.run(calls.nothing, timeout_s=60), repeats * 4)
    with IsolatedWorkers(1, memory_limit_mb=None, max_calls_per_worker=1, preload=PRELOAD) as pool:
        pool.run(calls.nothing, timeout_s=120)
        # Each call here runs in a fresh worker and retires the previous one (kill + exit report).
        fresh = median_s(lambda: pool.run(calls.nothing, timeout_s=60), repeats)
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(PRELOAD)
    start_stdlib(forkserver)  # starts the fork server itself
    stdlib_fork = median_s(lambda: start_stdlib(forkserver), repeats)
    spawn = multiprocessing.get_context("spawn")
    stdlib_spawn = median_s(lambda: start_stdlib(spawn, calls.import_preloads, PRELOAD), max(3, repeats // 3))
    print(f"  launcher start + first worker + first call (cold pool)  {statistics.median(first_calls) * 1000:8.1f} ms")
    print(f"  new worker forked by the launcher (call in fresh worker - warm call)"
          f" {(fresh - warm) * 1000:6.1f} ms")
    print(f"  multiprocessing forkserver, preloaded, Process start+join {stdlib_fork * 1000:8.1f} ms"
          f"  (this script as __main__: light)")
    print(f"  multiprocessing spawn, importing the same modules        {stdlib_spawn * 1000:8.1f} ms")
    print(f"  ratios: spawn / relicflow worker = {stdlib_spawn / (fresh - warm):.0f}x, "
          f"forkserver / relicflow worker = {stdlib_fork / (fresh - warm):.1f}x")
    heavy_main = forkserver_with_prefect_main(repeats)
    print(f"  multiprocessing forkserver when __main__ is a module importing prefect (as prefect.engine is"
          f" under a served flow) {heavy_main * 1000:.0f} ms = {heavy_main / (fresh - warm):.0f}x a relicflow worker")


def start_stdlib(context: multiprocessing.context.BaseContext, target: Callable[..., None] = calls.nothing,
                 *args: object) -> None:
    process = context.Process(target=target, args=args)  # type: ignore[attr-defined]
    process.start()
    process.join()


def forkserver_with_prefect_main(repeats: int) -> float:
    """multiprocessing re-runs the parent's __main__ module in every child it starts."""
    program = textwrap.dedent(f"""
        import multiprocessing, statistics, time
        import prefect
        import isolated_calls
        if __name__ == "__main__":
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload({PRELOAD!r})
            timings = []
            for _ in range({max(3, repeats // 3)} + 1):
                start = time.perf_counter()
                process = context.Process(target=isolated_calls.nothing)
                process.start()
                process.join()
                timings.append(time.perf_counter() - start)
            print(statistics.median(timings[1:]))
    """)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "heavy_main.py").write_text(program)
        env_path = ":".join([folder, str(Path(__file__).parent), str(Path(__file__).resolve().parents[1])])
        out = subprocess.run([sys.executable, "-m", "heavy_main"], capture_output=True, text=True, check=True,
                             env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin", "DO_NOT_TRACK": "1"})
    return float(out.stdout.strip().splitlines()[-1])


def interleaved_medians(first: Callable[[], object], second: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median times of two actions run alternately, so that the machine's drift hits both alike."""
    timings: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for action, kept in ((first, timings[0]), (second, timings[1])):
            start = time.perf_counter()
            action()
            kept.append(time.perf_counter() - start)
    return statistics.median(timings[0]), statistics.median(timings[1])


def bench_calls(repeats: int, scan: Path) -> None:
    print("\nan isolated call / the same call in this process (warm worker, 12 MP JPEG q90)")
    in_process = {
        "trivial function": (calls.nothing, ()),
        "decode_and_validate 12 MP JPEG, size back": (calls.decode_size, (str(scan),)),
        "decode + 2048-px access JPEG, bytes back": (calls.decode_to_access_jpeg, (str(scan),)),
    }
    with IsolatedWorkers(1, memory_limit_mb=1024, preload=PRELOAD) as pool:
        for label, (function, args) in in_process.items():
            function(*args)
            pool.run(function, *args, timeout_s=120)
            local, isolated = interleaved_medians(lambda: function(*args),  # noqa: B023
                                                  lambda: pool.run(function, *args, timeout_s=120), repeats)  # noqa: B023
            print(f"  {label:42s} in-process {local * 1000:8.3f} ms  isolated {isolated * 1000:8.3f} ms"
                  f"  ratio {isolated / local:7.2f}x  (+{(isolated - local) * 1000:.3f} ms)")


def bench_large_results(repeats: int) -> None:
    print("\nlarge results (bytes made in the worker and sent back)")
    with IsolatedWorkers(1, memory_limit_mb=None, preload=PRELOAD) as pool:
        per_mb = []
        for megabytes in (4, 32, 128):
            size = megabytes * 2**20
            pool.run(calls.filled_bytes, size, timeout_s=120)
            local, isolated = interleaved_medians(lambda: calls.filled_bytes(size),  # noqa: B023
                                                  lambda: pool.run(calls.filled_bytes, size, timeout_s=120),  # noqa: B023
                                                  repeats)
            per_mb.append((isolated - local) / megabytes)
            print(f"  {megabytes:3d} MB: isolated {isolated * 1000:7.1f} ms, made in-process {local * 1000:6.1f} ms,"
                  f" transfer {per_mb[-1] * 1000:.2f} ms/MB")
        # Above glibc's 32 MB mmap threshold every buffer is fresh memory (page faults): compare like with like.
        print(f"  transfer cost per MB, 128 MB / 32 MB = {per_mb[2] / per_mb[1]:.2f}x (about 1x: linear)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    bench_start_up(args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        scan = Path(folder) / "scan.jpg"
        make_jpeg(scan, 4000, 3000)
        bench_calls(args.repeats, scan)
    bench_large_results(max(5, args.repeats // 2))


if __name__ == "__main__":
    main()
