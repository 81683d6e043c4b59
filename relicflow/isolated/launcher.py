"""What runs inside the launcher process and the worker processes it forks.

The launcher is a fresh interpreter started by :mod:`relicflow.isolated.processes`: it imports the heavy
modules once, then forks a worker whenever the parent asks, hands the parent the worker's channel and
exit-status pipe (SCM_RIGHTS), reaps workers and reports how each ended. Forking from this single-threaded
process, never from the multi-threaded Prefect parent, is the point; starting it from a clean ``-c``
program, not through ``multiprocessing``, keeps the parent's ``__main__`` (``prefect.engine`` under a
served flow, ~1 s of imports) out of every worker.

This module must stay light: it is imported before the preloads and by every worker. Linux only
(``os.waitid``, ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import importlib
import os
import pickle
import resource
import selectors
import signal
import socket
import struct
import sys
import traceback
from typing import Any

# Wire format between the parent and a worker: an 8-byte big-endian length, then a pickle.
_HEADER = struct.Struct("!Q")
# Between the parent and the launcher (SOCK_SEQPACKET, one message each): b"F" asks for a worker, b"K" plus
# a pid kills that worker's process group; the answer to b"F" is the worker pid with two descriptors.
# The same 4-byte integer carries a worker's exit code (negative: a signal) on its status pipe.
INT32 = struct.Struct("!i")
FORK = b"F"
KILL = b"K"
READY = b"ready"
FAILED = b"failed:"

_PR_SET_PDEATHSIG = 1
_OUT_OF_MEMORY_FALLBACK = pickle.dumps(("out_of_memory", "(no traceback: out of memory while describing it)"))


def send_message(sock: socket.socket, payload: bytes) -> None:
    if len(payload) < 65536:
        sock.sendall(_HEADER.pack(len(payload)) + payload)
    else:  # no concatenated copy of a large result
        sock.sendall(_HEADER.pack(len(payload)))
        sock.sendall(payload)


def recv_message(sock: socket.socket, max_bytes: int | None = None) -> bytearray:
    """One whole message, read into a single preallocated buffer (linear in its size)."""
    (length,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if max_bytes is not None and length > max_bytes:
        raise OverflowError(f"message of {length} bytes is larger than the {max_bytes} allowed")
    return _recv_exact(sock, length)


def _recv_exact(sock: socket.socket, length: int) -> bytearray:
    buffer = bytearray(length)
    view = memoryview(buffer)
    received = 0
    while received < length:
        count = sock.recv_into(view[received:])
        if count == 0:
            raise EOFError("the other process closed the channel")
        received += count
    return buffer


def serve(config: dict[str, Any]) -> None:
    """The launcher's main loop; returns (and the interpreter exits) when the parent goes away."""
    control = socket.socket(fileno=config["control_fd"])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes us
    try:
        for name in config["preload"]:
            module_name, _, warm_up = name.partition(":")
            module = importlib.import_module(module_name)
            if warm_up:  # first calls import lazily (scipy, Pillow's plugins): pay that once, before forking
                getattr(module, warm_up)()
        if "cv2" in sys.modules:
            sys.modules["cv2"].setNumThreads(1)
    except BaseException:
        control.send(FAILED + traceback.format_exc().encode("utf-8", "replace")[-60000:])
        return
    control.send(READY + b" " + str(_thread_count()).encode())
    _Launcher(control, config).run()


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


class _Launcher:
    def __init__(self, control: socket.socket, config: dict[str, Any]) -> None:
        self.control = control
        self.memory_limit_bytes: int | None = config["memory_limit_bytes"]
        self.live: dict[int, int] = {}  # worker pid -> write end of its exit-status pipe
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler (not SIG_IGN) so the wake-up fd fires
        signal.set_wakeup_fd(self.wake_w)
        self.selector = selectors.DefaultSelector()

    def run(self) -> None:
        self.selector.register(self.control, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        while True:
            for key, _ in self.selector.select():
                if key.fileobj == self.wake_r:
                    while _drain(self.wake_r):
                        pass
                    self._reap()
                    continue
                try:
                    request = self.control.recv(64)
                    if request == FORK:
                        self._fork_worker()
                except OSError:
                    request = b""
                if not request:  # the parent closed the pool or died
                    self._shutdown()
                    return
                if request[:1] == KILL:
                    (pid,) = INT32.unpack(request[1:])
                    if pid in self.live:  # not yet reaped, so the pid cannot belong to anyone else
                        _kill_group(pid)

    def _fork_worker(self) -> None:
        parent_end, child_end = socket.socketpair()
        status_r, status_w = os.pipe()
        launcher_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for fd in (*self.live.values(), status_r, status_w, self.wake_r, self.wake_w):
                    os.close(fd)
                parent_end.close()
                self.selector.close()
                self.control.close()
                code = _become_worker(child_end, launcher_pid, self.memory_limit_bytes)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        try:
            os.setpgid(pid, pid)  # also done by the child: whichever runs first, a kill finds the group
        except OSError:
            pass
        child_end.close()
        self.live[pid] = status_w
        socket.send_fds(self.control, [INT32.pack(pid)], [parent_end.fileno(), status_r])
        parent_end.close()
        os.close(status_r)

    def _reap(self) -> None:
        while True:
            try:
                # WNOWAIT: the dead worker stays a zombie while we kill what it left in its process group,
                # so its pid (the group id) cannot have been reused by then.
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            _kill_group(info.si_pid)
            self._report(info.si_pid, os.waitpid(info.si_pid, 0)[1])

    def _report(self, pid: int, status: int) -> None:
        status_w = self.live.pop(pid, None)
        if status_w is None:
            return
        try:
            os.write(status_w, INT32.pack(os.waitstatus_to_exitcode(status)))
        except OSError:
            pass  # the parent already stopped listening
        os.close(status_w)

    def _shutdown(self) -> None:
        for pid in self.live:
            _kill_group(pid)
        for pid in list(self.live):
            self._report(pid, os.waitpid(pid, 0)[1])


def _drain(fd: int) -> bool:
    try:
        return bool(os.read(fd, 4096))
    except BlockingIOError:
        return False


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _become_worker(channel: socket.socket, launcher_pid: int, memory_limit_bytes: int | None) -> int:
    os.setpgid(0, 0)  # its own group: a kill reaches whatever the call started, Ctrl-C does not
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != launcher_pid:  # the launcher died before the death signal was armed
        return 1
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if memory_limit_bytes is not None:
        # RLIMIT_DATA counts private writable memory (heap, mmap'd buffers, numpy arrays, thread stacks)
        # but not mapped library code, so the limit means what it says; the hard limit stops the call
        # from raising it again.
        resource.setrlimit(resource.RLIMIT_DATA, (memory_limit_bytes, memory_limit_bytes))
    return _serve_calls(channel)


def _serve_calls(channel: socket.socket) -> int:
    while True:
        try:
            request = recv_message(channel)
        except (EOFError, ConnectionError):
            return 0
        reply, must_exit = _answer(request)
        del request
        try:
            send_message(channel, reply)
        except OSError:
            return 0
        if must_exit:
            return 0


def _answer(request: bytearray) -> tuple[bytes, bool]:
    """The pickled reply, and whether this worker must end after sending it (its memory ran out)."""
    try:
        function, args, kwargs = pickle.loads(request)
        result = function(*args, **kwargs)
    except Exception as exc:  # SystemExit and KeyboardInterrupt end the worker; the parent reports how
        if _is_out_of_memory(exc):
            return _out_of_memory_reply(exc), True
        return _exception_reply(exc), False
    try:
        return pickle.dumps(("ok", result), protocol=pickle.HIGHEST_PROTOCOL), False
    except MemoryError as exc:
        return _out_of_memory_reply(exc), True
    except Exception as exc:
        return _unpicklable_reply(exc, f"its result ({type(result).__name__}) cannot be sent back: {exc}"), False


def _is_out_of_memory(exc: BaseException | None) -> bool:
    """A MemoryError, OpenCV's, or an exception raised *from* one (``raise DecodeFailed from exc``):
    code that wraps every decoder error must not turn running out of memory into "damaged file"."""
    while exc is not None:
        if isinstance(exc, MemoryError):
            return True
        # OpenCV reports a failed allocation as cv2.error with code StsNoMem (-4), not as MemoryError.
        if type(exc).__module__ == "cv2" and getattr(exc, "code", None) == -4:
            return True
        exc = exc.__cause__
    return False


def _out_of_memory_reply(exc: BaseException) -> bytes:
    try:
        return pickle.dumps(("out_of_memory", "".join(traceback.format_exception(exc))))
    except MemoryError:
        return _OUT_OF_MEMORY_FALLBACK


def _exception_reply(exc: Exception) -> bytes:
    text = "".join(traceback.format_exception(exc))
    try:
        reply = pickle.dumps(("raised", exc, text), protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(reply)  # exceptions whose __init__ does not match their args only fail here
        return reply
    except Exception:
        return _unpicklable_reply(exc, str(exc), text)


def _unpicklable_reply(exc: BaseException, message: str, text: str | None = None) -> bytes:
    type_name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return pickle.dumps(("unpicklable", type_name, message, text or "".join(traceback.format_exception(exc))))
