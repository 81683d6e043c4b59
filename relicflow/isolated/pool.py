"""A pool of long-lived worker processes that runs one call at a time each, with bounds on time and memory.

Why: a decoder that hangs, crashes or swallows all memory on one hostile scan must end that scan only,
not the ingest run. Each call runs in a worker forked from a launcher process (see
:mod:`relicflow.isolated.launcher`); a call that overruns its time is killed with everything it started,
a worker that dies is reported with its signal, and either way a fresh worker replaces it on next use.

Knows nothing of Prefect, the catalogue or the web.
"""

from __future__ import annotations

import logging
import math
import pickle
import threading
import weakref
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from relicflow.errors import (
    IsolationError,
    RemoteError,
    RemoteTraceback,
    WorkerCrashed,
    WorkerOutOfMemory,
    WorkerTimedOut,
)
from relicflow.isolated.processes import LauncherProcess, LaunchSettings, ReplyTooLarge, WorkerGone, WorkerProcess

log = logging.getLogger("relicflow.isolated")

T = TypeVar("T")


class IsolatedWorkers:
    """Run picklable module-level functions in separate processes, ``processes`` calls at a time.

    ``run`` may be called from many threads at once: it blocks while every worker is busy and never gives
    one worker two calls. Workers (and the launcher they are forked from) start on first use. Native
    libraries (OpenMP, OpenBLAS, OpenCV, libvips) run one thread in each worker: parallelism comes from
    running several scans, and a launcher with library threads running could not be forked safely.

    - ``memory_limit_mb``: RLIMIT_DATA of each worker (heap and buffers, including the ~65 MB that numpy,
      Pillow and OpenCV take once imported; not mapped library code). ``None``: no limit.
    - ``max_calls_per_worker``: a worker is replaced after this many calls (leaks and fragmentation of
      one scan do not accumulate); ``None``: never.
    - ``preload``: modules imported once in the launcher, so that a new worker starts in milliseconds.
      Include the modules of the functions you run. Must be importable with this process's ``sys.path``.
      ``"module:function"`` also calls that function (no arguments) once after importing: a warm-up
      whose lazy imports and one-off set-up every forked worker then inherits.
    - ``max_result_mb``: a larger reply is refused and the worker replaced.
    """

    def __init__(self, processes: int, *, memory_limit_mb: int | None, max_calls_per_worker: int | None = 200,
                 preload: Sequence[str] = (), start_timeout_s: float = 120.0,
                 max_result_mb: int = 1024) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        if memory_limit_mb is not None and memory_limit_mb < 1:
            raise ValueError("memory_limit_mb must be positive or None")
        if max_calls_per_worker is not None and max_calls_per_worker < 1:
            raise ValueError("max_calls_per_worker must be positive or None")
        self.processes = processes
        self.memory_limit_mb = memory_limit_mb
        self.max_calls_per_worker = max_calls_per_worker
        self._launcher = LauncherProcess(LaunchSettings(
            preload=tuple(preload), memory_limit_mb=memory_limit_mb, start_timeout_s=start_timeout_s,
            max_result_bytes=max_result_mb * 2**20))
        self._changed = threading.Condition()
        self._idle: list[WorkerProcess] = []
        self._live: set[WorkerProcess] = set()
        self._slots_taken = 0  # live workers plus workers being started
        self._closed = False
        # A pool nobody closed still stops its launcher (and so its workers) when collected or at exit.
        self._finalizer = weakref.finalize(self, self._launcher.close)

    def run(self, fn: Callable[..., T], /, *args: Any, timeout_s: float, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a worker; its result, or its exception re-raised here.

        ``timeout_s`` counts from the moment a worker has the call (waiting for a free worker is not
        counted). Raises WorkerTimedOut, WorkerCrashed, WorkerOutOfMemory, RemoteError (an exception or
        result that cannot cross between processes) or IsolationError (pool closed). An exception ``fn``
        raises comes back as itself, with the worker's traceback as ``remote_traceback`` and as its cause.
        Arguments that cannot be pickled raise here, before any worker is used.
        """
        if not 0 < timeout_s < math.inf:
            raise ValueError("timeout_s must be a positive number of seconds")
        call = _describe(fn)
        request = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        worker, reply = self._deliver(request, call, timeout_s)
        worker.calls += 1
        try:
            kind, *content = pickle.loads(reply)
        except Exception as exc:
            self._release(worker)
            raise RemoteError(call, type(exc).__name__, f"its reply cannot be unpickled here: {exc}", "") from exc
        del reply
        if kind == "out_of_memory":
            self._discard(worker)  # it exits by itself; its state after a failed allocation is not trusted
            raise WorkerOutOfMemory(call, worker.pid, self.memory_limit_mb, content[0])
        self._release(worker)
        if kind == "ok":
            return content[0]  # type: ignore[no-any-return]
        if kind == "raised":
            exc, text = content
            try:
                exc.remote_traceback = text
            except AttributeError:  # an exception type with __slots__
                pass
            raise exc from RemoteTraceback(text)
        type_name, message, text = content
        raise RemoteError(call, type_name, message, text) from RemoteTraceback(text)

    def _deliver(self, request: bytes, call: str, timeout_s: float) -> tuple[WorkerProcess, bytearray]:
        """Run the call on a worker; the worker (still ours) and its raw reply, or an IsolationError."""
        for _ in range(self.processes + 2):  # workers found dead before they got the call are replaced
            worker = self._acquire()
            try:
                reply = worker.call(request, timeout_s)
            except WorkerGone as gone:
                exit_code = self._discard(worker)
                if self._closed:
                    raise IsolationError(f"the isolated worker pool was closed while {call} ran") from None
                if not gone.delivered:
                    log.warning("isolated worker %d had died while idle (exit code %s); replacing it",
                                worker.pid, exit_code)
                    continue
                raise WorkerCrashed(call, worker.pid, exit_code) from None
            except ReplyTooLarge as exc:
                self._discard(worker)
                raise IsolationError(f"{call} returned too much to send back: {exc}") from None
            except BaseException:  # e.g. KeyboardInterrupt in this thread: the worker's state is unknown
                self._discard(worker)
                raise
            if reply is None:
                self._discard(worker)
                raise WorkerTimedOut(call, worker.pid, timeout_s)
            return worker, reply
        raise IsolationError(f"could not hand {call} to a worker: each one died before it got the call")

    def process_ids(self) -> list[int]:
        """Pids of the launcher and of every live worker (for monitoring and tests)."""
        with self._changed:
            workers = [worker.pid for worker in self._live]
        launcher = self._launcher.pid
        return ([launcher] if launcher else []) + sorted(workers)

    def close(self) -> None:
        """Stop every worker and the launcher; calls still running raise IsolationError. Idempotent."""
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._changed.notify_all()
        self._finalizer()  # the launcher kills and reaps every worker, then exits and is reaped
        for worker in idle:
            self._forget(worker)
            worker.close()

    def __enter__(self) -> IsolatedWorkers:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _acquire(self) -> WorkerProcess:
        while True:
            with self._changed:
                while not self._idle and self._slots_taken >= self.processes and not self._closed:
                    self._changed.wait()
                if self._closed:
                    raise IsolationError("the isolated worker pool is closed")
                if not self._idle:
                    self._slots_taken += 1
                    break
                worker = self._idle.pop()
            if not worker.has_exited():
                return worker
            log.warning("isolated worker %d died while idle (exit code %s); replacing it",
                        worker.pid, self._discard(worker))
        try:
            worker = self._launcher.start_worker()
        except BaseException:
            with self._changed:
                self._slots_taken -= 1
                self._changed.notify()
            raise
        with self._changed:
            self._live.add(worker)
        return worker

    def _release(self, worker: WorkerProcess) -> None:
        """Give a healthy worker back, or retire it when it has done its share of calls."""
        if self.max_calls_per_worker is None or worker.calls < self.max_calls_per_worker:
            with self._changed:
                if not self._closed:
                    self._idle.append(worker)
                    self._changed.notify()
                    return
        self._discard(worker)

    def _discard(self, worker: WorkerProcess) -> int | None:
        """Kill the worker's process group, wait for its exit code, free its slot for a replacement."""
        self._launcher.kill(worker)
        exit_code = worker.exit_code()
        worker.close()
        self._forget(worker)
        return exit_code

    def _forget(self, worker: WorkerProcess) -> None:
        with self._changed:
            if worker in self._live:
                self._live.discard(worker)
                self._slots_taken -= 1
                self._changed.notify()


def _describe(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return f"{module}.{name}" if module else name
