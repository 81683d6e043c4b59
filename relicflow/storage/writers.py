"""Who wrote a temporary file, so a clean-up can tell a write that was killed from one still going.

LocalStore names each temporary file after its writer: ``w<host>-<pid>-<start>``, where ``host`` stands
for this kernel boot and PID namespace (the only place where the pid means that process) and ``start``
is the process's start time in clock ticks, so a pid used again by a later process is not mistaken for
the writer. A temporary file whose writer is known to have ended can go at once; one written on another
machine, in another container or before a reboot of unknown kind is judged by its age alone.
Linux only (``/proc``); elsewhere no tag is written and age alone decides, as before.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

_WRITER = re.compile(r"\.w(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-(?P<start>[0-9]+)\.[a-z0-9_]{8}\.tmp$")
_cached: tuple[int, str] | None = None  # (pid, tag): recomputed after a fork


def _host_id() -> str | None:
    """This boot of this kernel and this PID namespace, as 8 hex digits; None where it cannot be told."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text("ascii").strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return hashlib.sha256(f"{boot}\n{namespace}".encode()).hexdigest()[:8]


def _start_ticks(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/<pid>/stat) if it is running (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text("ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after the command name, which may hold spaces and ')'
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def writer_tag() -> str:
    """``w<host>-<pid>-<start>`` of this process, or "" where processes cannot be identified."""
    global _cached
    pid = os.getpid()
    if _cached is None or _cached[0] != pid:
        host, start = _host_id(), _start_ticks(pid)
        _cached = (pid, f"w{host}-{pid}-{start}" if host and start else "")
    return _cached[1]


def writer_has_ended(temporary_name: str) -> bool:
    """True only when the name carries a writer of this host and that process is no longer running."""
    match = _WRITER.search(temporary_name)
    if match is None or match["host"] != _host_id():
        return False
    return _start_ticks(int(match["pid"])) != match["start"]
