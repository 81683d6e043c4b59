"""Functions the isolated-worker tests send to worker processes.

They live in a module of their own (not the test module) because a worker imports a function's module
by name to run it; this one is light and is on ``sys.path`` in pytest (tests/relicflow).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from relicflow.errors import InputRejected


def add(a: int, b: int, *, times: int = 1) -> int:
    return (a + b) * times


def worker_pid() -> int:
    return os.getpid()


def echo(token: object) -> tuple[object, int]:
    return token, os.getpid()


def raise_value_error(message: str) -> None:
    raise ValueError(message)


def reject_scan() -> None:
    raise InputRejected("truncated_image", "The file is incomplete.", "文件不完整。", decoder_message="EOF")


class UnpicklableError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def raise_unpicklable(message: str) -> None:
    raise UnpicklableError(message)


def return_lock() -> threading.Lock:
    return threading.Lock()


def hang() -> None:
    while True:
        time.sleep(60)


def start_child_and_hang(pid_file: str) -> None:
    """Start a grandchild (a long sleep), say its pid, then hang: a timeout must kill both."""
    child = subprocess.Popen(["sleep", "600"])
    Path(pid_file).write_text(str(child.pid))
    hang()


def wait_for_file(path: str) -> int:
    while not Path(path).exists():
        time.sleep(0.02)
    return os.getpid()


def segfault() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def abort() -> None:
    os.abort()


def exit_hard(code: int) -> None:
    os._exit(code)


def call_sys_exit(code: int) -> None:
    raise SystemExit(code)


def killed_like_by_oom_killer() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def allocate_bytes(size: int) -> int:
    """Allocate and touch ``size`` bytes; returns how many it held."""
    block = bytearray(size)
    block[::4096] = b"\x01" * len(block[::4096])
    return len(block)


def allocate_numpy(size: int) -> int:
    import numpy as np

    return int(np.ones(size, dtype=np.uint8).sum())


def allocate_pillow(side: int) -> tuple[int, int]:
    from PIL import Image

    return Image.new("RGB", (side, side)).size


def allocate_opencv(side: int) -> tuple[int, ...]:
    import cv2
    import numpy as np

    return cv2.resize(np.zeros((64, 64, 3), np.uint8), (side, side)).shape


def raise_memory_error() -> None:
    raise MemoryError("simulated")


def raise_from_memory_error() -> None:
    """What code that wraps every decoder failure does (tasks.validation: ``raise _decode_failure(exc)
    from exc``)."""
    try:
        bytearray(1 << 40)
    except Exception as exc:
        raise ValueError("decoder failed") from exc


def raise_after_handling_memory_error() -> None:
    """A MemoryError that was handled (only the implicit context) is not an out-of-memory outcome."""
    try:
        raise MemoryError("handled")
    except MemoryError:
        raise ValueError("unrelated") from None


def make_jpeg(path: str, width: int, height: int) -> None:
    import numpy as np
    from PIL import Image

    coarse = np.random.default_rng(0).integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    Image.fromarray(coarse).resize((width, height)).save(path, "JPEG", quality=85)


def decode_scan(path: str) -> tuple[int, int]:
    from tasks.validation import decode_and_validate

    decoded = decode_and_validate(Path(path), max_pixels=500_000_000)
    return decoded.width, decoded.height


def large_result(size: int) -> bytes:
    return os.urandom(size)


def thread_report() -> dict[str, int]:
    """Threads of this process after numpy and OpenCV have done real work."""
    import cv2
    import numpy as np

    square = np.random.default_rng(0).random((600, 600))
    _ = square @ square
    cv2.GaussianBlur(np.zeros((2000, 2000, 3), np.uint8), (31, 31), 0)
    return {"threads": len(os.listdir("/proc/self/task")), "opencv_threads": cv2.getNumThreads()}


def memory_limit() -> tuple[int, int]:
    import resource

    return resource.getrlimit(resource.RLIMIT_DATA)
