"""IsolatedWorkers with real processes: results, exceptions, hangs, crashes, memory, threads, shutdown."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import isolated_targets as targets
import pytest

from relicflow.errors import (
    ConfigurationError,
    InputRejected,
    IsolationError,
    RemoteError,
    RemoteTraceback,
    WorkerCrashed,
    WorkerOutOfMemory,
    WorkerTimedOut,
)
from relicflow.isolated import IsolatedWorkers

PRELOAD = ("isolated_targets", "numpy", "PIL.Image", "cv2")
# Generous: only "it came back" is asserted, never how fast (shared, noisy machine).
CALL_TIMEOUT_S = 60.0
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workers() -> Iterator[IsolatedWorkers]:
    """Two workers shared by the tests below; several of them crash workers on purpose, so sharing also
    shows that the pool keeps working after every kind of failure."""
    with IsolatedWorkers(2, memory_limit_mb=512, preload=PRELOAD) as pool:
        yield pool


def is_running(pid: int) -> bool:
    """True while the process exists and is not a zombie (a zombie has ended; only its exit status is left)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until_ended(pids: list[int], patience_s: float = 30.0) -> list[int]:
    """The pids still running after ``patience_s`` (normally none, after a few milliseconds)."""
    deadline = time.monotonic() + patience_s
    while any(is_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if is_running(pid)]


def test_returns_the_result_computed_in_another_process(workers: IsolatedWorkers) -> None:
    assert workers.run(targets.add, 2, 3, times=4, timeout_s=CALL_TIMEOUT_S) == 20
    worker_pid = workers.run(targets.worker_pid, timeout_s=CALL_TIMEOUT_S)
    assert worker_pid != os.getpid()
    assert worker_pid in workers.process_ids()


def test_exception_comes_back_as_itself_with_the_workers_traceback(workers: IsolatedWorkers) -> None:
    with pytest.raises(ValueError, match="^bad scan$") as raised:
        workers.run(targets.raise_value_error, "bad scan", timeout_s=CALL_TIMEOUT_S)
    assert "in raise_value_error" in raised.value.remote_traceback  # type: ignore[attr-defined]
    assert isinstance(raised.value.__cause__, RemoteTraceback)
    assert "isolated_targets.py" in str(raised.value.__cause__)


def test_input_rejected_crosses_with_its_code_and_both_messages(workers: IsolatedWorkers) -> None:
    with pytest.raises(InputRejected) as raised:
        workers.run(targets.reject_scan, timeout_s=CALL_TIMEOUT_S)
    assert raised.value.code == "truncated_image"
    assert raised.value.message_en == "The file is incomplete."
    assert raised.value.message_zh == "文件不完整。"
    assert raised.value.details == {"decoder_message": "EOF"}


def test_worker_survives_an_ordinary_exception() -> None:
    with IsolatedWorkers(1, memory_limit_mb=None, preload=PRELOAD) as pool:
        first = pool.run(targets.worker_pid, timeout_s=CALL_TIMEOUT_S)
        with pytest.raises(ValueError):
            pool.run(targets.raise_value_error, "x", timeout_s=CALL_TIMEOUT_S)
        assert pool.run(targets.worker_pid, timeout_s=CALL_TIMEOUT_S) == first


def test_unpicklable_exception_becomes_remote_error_with_what_can_travel(workers: IsolatedWorkers) -> None:
    with pytest.raises(RemoteError) as raised:
        workers.run(targets.raise_unpicklable, "holds a lock", timeout_s=CALL_TIMEOUT_S)
    assert raised.value.type_name == "isolated_targets.UnpicklableError"
    assert raised.value.remote_message == "holds a lock"
    assert "in raise_unpicklable" in raised.value.remote_traceback


def test_unpicklable_result_becomes_remote_error(workers: IsolatedWorkers) -> None:
    with pytest.raises(RemoteError, match="cannot be sent back"):
        workers.run(targets.return_lock, timeout_s=CALL_TIMEOUT_S)
    assert workers.run(targets.add, 1, 1, timeout_s=CALL_TIMEOUT_S) == 2


def test_unpicklable_argument_raises_here_before_any_worker_is_used(workers: IsolatedWorkers) -> None:
    with pytest.raises(TypeError, match="pickle"):
        workers.run(targets.add, threading.Lock(), 1, timeout_s=CALL_TIMEOUT_S)
    assert workers.run(targets.add, 1, 2, timeout_s=CALL_TIMEOUT_S) == 3


def test_hang_is_killed_at_the_timeout_and_the_worker_replaced(workers: IsolatedWorkers) -> None:
    with pytest.raises(WorkerTimedOut) as raised:
        workers.run(targets.hang, timeout_s=1.0)
    assert raised.value.timeout_s == 1.0
    assert wait_until_ended([raised.value.pid]) == []
    assert raised.value.pid not in workers.process_ids()
    assert workers.run(targets.add, 2, 2, timeout_s=CALL_TIMEOUT_S) == 4


def test_timeout_also_kills_what_the_call_started(workers: IsolatedWorkers, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    with pytest.raises(WorkerTimedOut):
        workers.run(targets.start_child_and_hang, str(pid_file), timeout_s=2.0)
    grandchild = int(pid_file.read_text())
    assert wait_until_ended([grandchild]) == []


@pytest.mark.parametrize(("target", "expected_signal"), [
    (targets.segfault, signal.SIGSEGV),
    (targets.abort, signal.SIGABRT),
    (targets.killed_like_by_oom_killer, signal.SIGKILL),
])
def test_worker_killed_by_a_signal_is_a_crash_with_that_signal(workers: IsolatedWorkers, target: object,
                                                                expected_signal: signal.Signals) -> None:
    with pytest.raises(WorkerCrashed) as raised:
        workers.run(target, timeout_s=CALL_TIMEOUT_S)  # type: ignore[arg-type]
    assert raised.value.signal_number == expected_signal
    assert raised.value.exit_code == -expected_signal
    assert expected_signal.name in str(raised.value)
    assert not is_running(raised.value.pid)
    assert workers.run(targets.add, 3, 4, timeout_s=CALL_TIMEOUT_S) == 7


@pytest.mark.parametrize("target", [targets.exit_hard, targets.call_sys_exit])
def test_worker_that_exits_is_a_crash_with_its_exit_code(workers: IsolatedWorkers, target: object) -> None:
    with pytest.raises(WorkerCrashed, match="exited with code 7") as raised:
        workers.run(target, 7, timeout_s=CALL_TIMEOUT_S)  # type: ignore[arg-type]
    assert raised.value.exit_code == 7
    assert raised.value.signal_number is None
    assert workers.run(targets.add, 0, 5, timeout_s=CALL_TIMEOUT_S) == 5


def test_worker_killed_while_idle_is_replaced_without_failing_the_next_call() -> None:
    with IsolatedWorkers(1, memory_limit_mb=None, preload=PRELOAD) as pool:
        first = pool.run(targets.worker_pid, timeout_s=CALL_TIMEOUT_S)
        os.kill(first, signal.SIGKILL)
        # Once it has ended (a SIGKILL landing while a call is being handed over is a crash of that call).
        assert wait_until_ended([first]) == []
        second = pool.run(targets.worker_pid, timeout_s=CALL_TIMEOUT_S)
        assert second != first
        assert pool.process_ids()[1:] == [second]


GIB = 2**30


@pytest.mark.parametrize(("target", "size"), [
    (targets.allocate_bytes, GIB),
    (targets.allocate_numpy, GIB),
    (targets.allocate_pillow, 20_000),  # 1.2 GB of RGB pixels
    (targets.allocate_opencv, 20_000),  # cv2.error "Insufficient memory", not MemoryError
])
def test_allocation_beyond_the_memory_limit_is_out_of_memory(workers: IsolatedWorkers, target: object,
                                                             size: int) -> None:
    with pytest.raises(WorkerOutOfMemory) as raised:
        workers.run(target, size, timeout_s=CALL_TIMEOUT_S)  # type: ignore[arg-type]
    assert raised.value.memory_limit_mb == 512
    assert raised.value.remote_traceback
    assert wait_until_ended([raised.value.pid]) == []  # a worker that ran out is replaced, not reused
    # Memory inside the limit still works, in the replacement worker.
    assert workers.run(targets.allocate_bytes, 128 * 2**20, timeout_s=CALL_TIMEOUT_S) == 128 * 2**20


def test_memory_limit_is_set_in_the_worker_and_absent_without_one(workers: IsolatedWorkers) -> None:
    assert workers.run(targets.memory_limit, timeout_s=CALL_TIMEOUT_S) == (512 * 2**20, 512 * 2**20)
    with IsolatedWorkers(1, memory_limit_mb=None) as unlimited:
        import resource

        limit = unlimited.run(targets.memory_limit, timeout_s=CALL_TIMEOUT_S)
        assert limit == resource.getrlimit(resource.RLIMIT_DATA)


def test_memory_error_raised_inside_the_call_is_out_of_memory_without_a_limit() -> None:
    with IsolatedWorkers(1, memory_limit_mb=None, preload=PRELOAD) as pool:
        with pytest.raises(WorkerOutOfMemory, match="memory available"):
            pool.run(targets.raise_memory_error, timeout_s=CALL_TIMEOUT_S)
        assert pool.run(targets.add, 1, 1, timeout_s=CALL_TIMEOUT_S) == 2


def test_exception_raised_from_a_memory_error_is_out_of_memory(workers: IsolatedWorkers) -> None:
    with pytest.raises(WorkerOutOfMemory):
        workers.run(targets.raise_from_memory_error, timeout_s=CALL_TIMEOUT_S)
    with pytest.raises(ValueError, match="unrelated"):
        workers.run(targets.raise_after_handling_memory_error, timeout_s=CALL_TIMEOUT_S)


def test_real_decoder_beyond_the_limit_is_out_of_memory_not_a_damaged_file(tmp_path: Path) -> None:
    """tasks.validation wraps every decoder error as corrupt_image (from the original); a 48 MP JPEG needs
    144 MB of pixels, more than a 150 MB limit leaves after the ~65 MB the libraries take."""
    scan, small = tmp_path / "scan.jpg", tmp_path / "small.jpg"
    targets.make_jpeg(str(scan), 8000, 6000)
    targets.make_jpeg(str(small), 800, 600)
    with IsolatedWorkers(1, memory_limit_mb=150, preload=(*PRELOAD, "tasks.validation")) as pool:
        with pytest.raises(WorkerOutOfMemory):
            pool.run(targets.decode_scan, str(scan), timeout_s=CALL_TIMEOUT_S)
        assert pool.run(targets.decode_scan, str(small), timeout_s=CALL_TIMEOUT_S) == (800, 600)


def test_large_results_come_back_whole(workers: IsolatedWorkers) -> None:
    size = 48 * 2**20
    data = workers.run(targets.large_result, size, timeout_s=CALL_TIMEOUT_S)
    assert len(data) == size
    assert workers.run(targets.echo, data[:1000], timeout_s=CALL_TIMEOUT_S)[0] == data[:1000]


def test_result_above_the_allowed_size_is_refused_and_the_pool_goes_on() -> None:
    with IsolatedWorkers(1, memory_limit_mb=None, max_result_mb=1, preload=PRELOAD) as pool:
        with pytest.raises(IsolationError, match="too much"):
            pool.run(targets.large_result, 2 * 2**20, timeout_s=CALL_TIMEOUT_S)
        assert len(pool.run(targets.large_result, 2**19, timeout_s=CALL_TIMEOUT_S)) == 2**19


def test_native_libraries_run_single_threaded_in_workers(workers: IsolatedWorkers) -> None:
    report = workers.run(targets.thread_report, timeout_s=CALL_TIMEOUT_S)
    assert report == {"threads": 1, "opencv_threads": 1}


def test_worker_is_replaced_after_its_share_of_calls() -> None:
    with IsolatedWorkers(1, memory_limit_mb=None, max_calls_per_worker=3, preload=PRELOAD) as pool:
        pids = [pool.run(targets.worker_pid, timeout_s=CALL_TIMEOUT_S) for _ in range(7)]
        assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] == pids[5] != pids[6]
        assert wait_until_ended([pids[0], pids[3]]) == []


def test_run_blocks_while_every_worker_is_busy(tmp_path: Path) -> None:
    release = tmp_path / "release"
    results: dict[str, int] = {}
    with IsolatedWorkers(1, memory_limit_mb=None, preload=PRELOAD) as pool:
        first = threading.Thread(target=lambda: results.update(first=pool.run(
            targets.wait_for_file, str(release), timeout_s=CALL_TIMEOUT_S)))
        first.start()
        while len(pool.process_ids()) < 2:  # the launcher and the first call's worker
            time.sleep(0.01)
        second = threading.Thread(target=lambda: results.update(second=pool.run(
            targets.worker_pid, timeout_s=CALL_TIMEOUT_S)))
        second.start()
        second.join(0.5)
        assert second.is_alive() and "second" not in results  # waits for the only worker
        release.touch()
        first.join(CALL_TIMEOUT_S)
        second.join(CALL_TIMEOUT_S)
    assert results["first"] == results["second"]


def test_many_threads_with_crashes_and_timeouts_each_get_their_own_answer() -> None:
    """8 threads x 30 calls on 2 workers, a fifth of the calls killing or hanging their worker."""
    outcomes: dict[tuple[int, int], object] = {}
    pids_seen: set[int] = set()

    def expected(thread: int, index: int) -> str:
        if index == thread:
            return "timeout"
        return ["segfault", "raise", "exit", "memory", "echo", "echo", "echo", "echo", "echo", "echo"][
            (thread * 31 + index) % 10]

    def one_thread(pool: IsolatedWorkers, thread: int) -> None:
        for index in range(30):
            token = f"{thread}-{index}"
            kind = expected(thread, index)
            try:
                if kind == "timeout":
                    pool.run(targets.hang, timeout_s=0.5)
                elif kind == "segfault":
                    pool.run(targets.segfault, timeout_s=CALL_TIMEOUT_S)
                elif kind == "raise":
                    pool.run(targets.raise_value_error, token, timeout_s=CALL_TIMEOUT_S)
                elif kind == "exit":
                    pool.run(targets.exit_hard, 3, timeout_s=CALL_TIMEOUT_S)
                elif kind == "memory":
                    pool.run(targets.allocate_bytes, GIB, timeout_s=CALL_TIMEOUT_S)
                else:
                    answer, pid = pool.run(targets.echo, token, timeout_s=CALL_TIMEOUT_S)
                    pids_seen.add(pid)
                    outcomes[thread, index] = answer
                    continue
                outcomes[thread, index] = "returned"
            except WorkerTimedOut:
                outcomes[thread, index] = "timeout"
            except WorkerCrashed as crash:
                outcomes[thread, index] = {-signal.SIGSEGV: "segfault", 3: "exit"}.get(crash.exit_code, crash)
            except ValueError as error:
                outcomes[thread, index] = ("raise", str(error))
            except WorkerOutOfMemory:
                outcomes[thread, index] = "memory"

    with IsolatedWorkers(2, memory_limit_mb=512, preload=PRELOAD) as pool:
        threads = [threading.Thread(target=one_thread, args=(pool, t)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(pool.process_ids()) <= 3  # the launcher and at most 2 workers
        assert pool.run(targets.add, 20, 22, timeout_s=CALL_TIMEOUT_S) == 42

    for thread in range(8):
        for index in range(30):
            kind, token = expected(thread, index), f"{thread}-{index}"
            want = {"echo": token, "raise": ("raise", token)}.get(kind, kind)
            assert outcomes[thread, index] == want, (thread, index)
    assert len(pids_seen) > 2  # crashed workers really were replaced


def test_close_leaves_no_process_behind() -> None:
    pool = IsolatedWorkers(2, memory_limit_mb=None, preload=PRELOAD)
    pool.run(targets.add, 1, 1, timeout_s=CALL_TIMEOUT_S)
    with pytest.raises(WorkerCrashed):
        pool.run(targets.segfault, timeout_s=CALL_TIMEOUT_S)
    ended: list[BaseException] = []

    def run_until_closed() -> None:
        try:
            pool.run(targets.hang, timeout_s=CALL_TIMEOUT_S)
        except BaseException as exc:
            ended.append(exc)

    busy = threading.Thread(target=run_until_closed)
    busy.start()
    while len(pool.process_ids()) < 2:
        time.sleep(0.01)
    pool.run(targets.add, 1, 1, timeout_s=CALL_TIMEOUT_S)  # a second, idle worker
    pids = pool.process_ids()
    assert len(pids) == 3
    pool.close()
    busy.join(CALL_TIMEOUT_S)
    assert not busy.is_alive()
    assert [type(exc) for exc in ended] == [IsolationError]  # not a crash: the pool was closed under it
    assert "closed while" in str(ended[0])
    # Not even zombies: the launcher was reaped by us, the workers by the launcher.
    assert [pid for pid in pids if Path(f"/proc/{pid}").exists()] == []
    with pytest.raises(IsolationError, match="closed"):
        pool.run(targets.add, 1, 1, timeout_s=CALL_TIMEOUT_S)
    pool.close()  # idempotent


_ORPHANED_PARENT = """
import json, sys, threading, time
import isolated_targets as targets
from relicflow.isolated import IsolatedWorkers

pool = IsolatedWorkers(2, memory_limit_mb=None, preload=["isolated_targets"])
threading.Thread(target=pool.run, args=(targets.hang,), kwargs={"timeout_s": 600}, daemon=True).start()
while len(pool.process_ids()) < 2:
    time.sleep(0.01)
pool.run(targets.add, 1, 2, timeout_s=60)  # a second worker, idle
print(json.dumps(pool.process_ids()), flush=True)
time.sleep(600)
"""


def test_workers_end_when_their_parent_is_killed() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(Path(targets.__file__).parent)]))
    parent = subprocess.Popen([sys.executable, "-c", _ORPHANED_PARENT], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert parent.stdout is not None
        pids = json.loads(parent.stdout.readline())
        assert len(pids) == 3 and all(is_running(pid) for pid in pids)
    finally:
        parent.kill()  # SIGKILL: no clean-up code runs in the parent
        parent.wait()
    assert wait_until_ended(pids) == []


def test_launcher_killed_takes_its_workers_and_a_new_one_takes_over() -> None:
    outcome: list[BaseException] = []

    def hang() -> None:
        try:
            pool.run(targets.hang, timeout_s=CALL_TIMEOUT_S)
        except BaseException as exc:
            outcome.append(exc)

    with IsolatedWorkers(1, memory_limit_mb=None, preload=PRELOAD) as pool:
        busy = threading.Thread(target=hang)
        busy.start()
        while len(pool.process_ids()) < 2:
            time.sleep(0.01)
        launcher, worker = pool.process_ids()
        os.kill(launcher, signal.SIGKILL)  # no chance to clean up: the worker must die by itself
        busy.join(CALL_TIMEOUT_S)
        assert [type(exc) for exc in outcome] == [WorkerCrashed]
        assert outcome[0].exit_code is None  # type: ignore[attr-defined]
        assert wait_until_ended([worker]) == []
        assert pool.run(targets.add, 5, 5, timeout_s=CALL_TIMEOUT_S) == 10
        assert pool.process_ids()[0] != launcher


def test_missing_preload_module_is_a_configuration_error() -> None:
    with IsolatedWorkers(1, memory_limit_mb=None, preload=["no_such_module_for_relicflow"]) as pool:
        with pytest.raises(ConfigurationError, match="no_such_module_for_relicflow"):
            pool.run(targets.add, 1, 1, timeout_s=CALL_TIMEOUT_S)
        assert pool.process_ids() == []


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        IsolatedWorkers(0, memory_limit_mb=None)
    with IsolatedWorkers(1, memory_limit_mb=None) as pool:
        for bad in (0, -1, float("inf"), float("nan")):
            with pytest.raises(ValueError):
                pool.run(targets.add, 1, 1, timeout_s=bad)
        assert pool.process_ids() == []  # refused before any process started


def test_random_mix_on_one_worker_keeps_answers_in_order() -> None:
    """One worker, calls of random sizes back to back: no reply is ever read by the wrong call."""
    rng = random.Random(5)
    with IsolatedWorkers(1, memory_limit_mb=None, preload=PRELOAD) as pool:
        for _ in range(40):
            size = rng.choice([0, 10, 70_000, 3 * 2**20])
            token = rng.randbytes(size)
            assert pool.run(targets.echo, token, timeout_s=CALL_TIMEOUT_S)[0] == token
