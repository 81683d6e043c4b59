"""The parent's handles on the launcher process and on each worker process it forked.

Thread-safety: :class:`LauncherProcess` serialises its control socket with a lock; a
:class:`WorkerProcess` is used by one thread at a time (the pool hands it out), so it has none.
"""

from __future__ import annotations

import json
import logging
import math
import os
import select
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass

from relicflow.errors import ConfigurationError, IsolationError
from relicflow.isolated.launcher import FAILED, FORK, INT32, KILL, READY, recv_message, send_message

log = logging.getLogger("relicflow.isolated")

# Thread pools of the native libraries, fixed at 1 before anything is imported in the launcher: one scan's
# work must not spread over every core (2 here) while four scans run side by side, and the launcher must
# have no threads when it forks. Overrides the parent's environment on purpose.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                     "VECLIB_MAXIMUM_THREADS", "OPENCV_FOR_THREADS_NUM", "VIPS_CONCURRENCY")
_BOOT = ("import json, sys; config = json.loads(sys.argv[1]); sys.path[:] = config['sys_path']; "
         "from relicflow.isolated.launcher import serve; serve(config)")
# How long to wait for the launcher to report a worker's exit after a SIGKILL (normally microseconds).
_EXIT_REPORT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class LaunchSettings:
    preload: tuple[str, ...]
    memory_limit_mb: int | None
    start_timeout_s: float
    max_result_bytes: int


class WorkerGone(Exception):
    """The worker died (internal to the pool); ``delivered`` says whether it had received the call."""

    def __init__(self, *, delivered: bool) -> None:
        super().__init__("delivered" if delivered else "not delivered")
        self.delivered = delivered


class ReplyTooLarge(Exception):
    """The worker announced a reply above ``max_result_bytes``; the channel is out of step (internal)."""


class WorkerProcess:
    """A channel to one worker and the pipe on which the launcher reports the worker's exit code."""

    def __init__(self, pid: int, launcher_run: int, channel: socket.socket, status_fd: int,
                 max_result_bytes: int) -> None:
        self.pid = pid
        self.launcher_run = launcher_run  # which start of the launcher forked it
        self.calls = 0
        self._channel = channel
        self._status_fd = status_fd
        self._max_result_bytes = max_result_bytes

    def call(self, request: bytes, timeout_s: float) -> bytearray | None:
        """The worker's pickled reply, or ``None`` when ``timeout_s`` passed first. Raises WorkerGone."""
        try:
            send_message(self._channel, request)
        except OSError as exc:  # it died while idle, since the pool last checked
            raise WorkerGone(delivered=False) from exc
        poller = select.poll()  # not select(): descriptors above 1024 are common in a Prefect process
        poller.register(self._channel, select.POLLIN)
        poller.register(self._status_fd, select.POLLIN)
        ready = {fd for fd, _ in poller.poll(math.ceil(timeout_s * 1000))}
        if not ready:
            return None
        if self._channel.fileno() not in ready:
            raise WorkerGone(delivered=True)
        try:
            return recv_message(self._channel, self._max_result_bytes)
        except OverflowError as exc:
            raise ReplyTooLarge(str(exc)) from exc
        except (EOFError, OSError) as exc:
            raise WorkerGone(delivered=True) from exc

    def has_exited(self) -> bool:
        poller = select.poll()
        poller.register(self._status_fd, select.POLLIN)
        return bool(poller.poll(0))

    def exit_code(self, timeout_s: float = _EXIT_REPORT_TIMEOUT_S) -> int | None:
        """Wait for the launcher's report of how the worker ended; ``None`` if it cannot say."""
        poller = select.poll()
        poller.register(self._status_fd, select.POLLIN)
        if not poller.poll(math.ceil(timeout_s * 1000)):
            log.error("no exit report for isolated worker %d after %.0f s", self.pid, timeout_s)
            return None
        report = os.read(self._status_fd, INT32.size)
        return INT32.unpack(report)[0] if len(report) == INT32.size else None

    def close(self) -> None:
        self._channel.close()
        os.close(self._status_fd)


class LauncherProcess:
    """The fresh interpreter that preloads the heavy modules and forks workers; started on first use."""

    def __init__(self, settings: LaunchSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._run = 0  # counts starts: a worker of a launcher that died is not the new launcher's to kill
        self._closed = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start_worker(self) -> WorkerProcess:
        with self._lock:
            for attempt in (1, 2):
                if self._closed:
                    raise IsolationError("the isolated worker pool is closed")
                if self._control is None:
                    self._start()
                assert self._control is not None
                try:
                    self._control.send(FORK)
                    reply = self._receive_worker()
                except OSError as exc:
                    log.error("isolated-worker launcher %s died; starting another (%s)", self.pid, exc)
                    self._stop()
                    if attempt == 2:
                        raise IsolationError(f"the isolated-worker launcher died twice in a row: {exc}") from exc
                    continue
                return reply
        raise AssertionError("unreachable")

    def kill(self, worker: WorkerProcess) -> None:
        """SIGKILL the worker's process group, unless the launcher already reaped the worker."""
        with self._lock:
            if self._control is None or worker.launcher_run != self._run:
                return  # its launcher is gone, and the worker with it (PR_SET_PDEATHSIG)
            try:
                self._control.send(KILL + INT32.pack(worker.pid))
            except OSError as exc:
                log.warning("could not ask the launcher to kill worker %d: %s", worker.pid, exc)

    def close(self) -> None:
        """Stop the launcher; it kills and reaps every worker before it exits."""
        with self._lock:
            self._closed = True
            self._stop()

    def _start(self) -> None:
        settings = self._settings
        control, remote = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ)
        env.update(dict.fromkeys(_THREAD_VARIABLES, "1"))
        limit = settings.memory_limit_mb * 2**20 if settings.memory_limit_mb else None
        config = {"control_fd": remote.fileno(), "sys_path": sys.path, "preload": list(settings.preload),
                  "memory_limit_bytes": limit}
        try:
            process = subprocess.Popen([sys.executable, "-c", _BOOT, json.dumps(config)], env=env,
                                       stdin=subprocess.DEVNULL, pass_fds=(remote.fileno(),))
        finally:
            remote.close()
        self._process, self._control = process, control
        self._run += 1
        if not _readable(control, settings.start_timeout_s):
            self._stop()
            raise IsolationError(f"the isolated-worker launcher did not start within {settings.start_timeout_s:g} s")
        message = control.recv(1 << 20)
        if message.startswith(READY):
            threads = int(message[len(READY):] or 1)
            if threads > 1:
                log.warning("isolated-worker launcher runs %d threads after its preloads; forking it is "
                            "unsafe if they hold locks (preload: %s)", threads, settings.preload)
            return
        self._stop()
        if message.startswith(FAILED):
            detail = message[len(FAILED):].decode("utf-8", "replace")
            raise ConfigurationError(f"the isolated-worker launcher could not import its preload modules "
                                     f"{list(settings.preload)}:\n{detail}")
        raise IsolationError("the isolated-worker launcher exited while starting (see its output above)")

    def _receive_worker(self) -> WorkerProcess:
        assert self._control is not None
        if not _readable(self._control, self._settings.start_timeout_s):
            raise OSError("the launcher did not answer a request for a worker")
        message, fds, _, _ = socket.recv_fds(self._control, 64, 2, getattr(socket, "MSG_CMSG_CLOEXEC", 0))
        if not message or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            raise OSError("the launcher closed its control socket")
        (pid,) = INT32.unpack(message)
        return WorkerProcess(pid, self._run, socket.socket(fileno=fds[0]), fds[1], self._settings.max_result_bytes)

    def _stop(self) -> None:
        if self._control is not None:
            self._control.close()  # the launcher sees EOF, kills its workers, reaps them and exits
            self._control = None
        if self._process is not None:
            try:
                self._process.wait(timeout=_EXIT_REPORT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.error("isolated-worker launcher %d did not exit; killing it", self._process.pid)
                self._process.kill()
                self._process.wait()
            self._process = None


def _readable(sock: socket.socket, timeout_s: float) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(math.ceil(timeout_s * 1000)))
