"""The crash test's world: the studio that drops scans, an issuer that is slow the way chains are, a
probe that reads the catalogue and the ledger from outside, and the processes that get killed."""

from __future__ import annotations

import asyncio
import io
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from crash_audit import Dropped, sha256_file
from relicflow.storage import original_key

GRADES = ("一级", "二级", "三级")
BAD_KINDS = (("truncated", "truncated_image"), ("not_an_image", "not_an_image"), ("empty", "empty_file"))
EVENT_TIMEOUT_S = 120.0  # safety net only: no phase takes near this long

# -- the scans the studio drops ---------------------------------------------------------------------


def relic(seed: int, size: tuple[int, int]) -> PILImage.Image:
    """A smooth random object: distinct perceptual hashes per seed."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)
    return PILImage.fromarray(small).resize(size, PILImage.Resampling.BICUBIC)


def encode(img: PILImage.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


class Studio:
    """Drops a few new scans per ingest point: good ones (one large TIFF now and then, so kills can
    land inside a storage write), one bad one, the same bytes as an earlier scan under a new name, and
    now and then an earlier scan's name in another folder with new content. Keeps the sheet current."""

    def __init__(self, inbox: Path, store_root: Path, seed: int) -> None:
        self.inbox, self.store_root = inbox, store_root
        self.rng = random.Random(f"scans-{seed}")  # the same scans for a seed, wherever the kills land
        self.tidy_rng = random.Random(f"tidy-{seed}")
        self.dropped: list[Dropped] = []
        self.sheet_rows: list[tuple[str, str, str]] = []  # accession number, grade, file name
        self.batch = 0

    def drop(self) -> list[Dropped]:
        self.batch += 1
        n, rng, new = self.batch, self.rng, []
        for j in range(rng.randint(2, 3)):
            big = rng.random() < 0.15
            fmt, ext = ("TIFF", "tif") if big else rng.choice((("JPEG", "jpg"), ("PNG", "png")))
            size = (2000, 1500) if big else rng.choice(((1200, 900), (900, 1200), (1600, 1200)))
            name = f"CR-{n:02d}-{j}_front.{ext}"
            new.append(self._write(name, encode(relic(1000 * n + j, size), fmt), good=True))
            self.sheet_rows.append((f"CR-{n:02d}-{j}", rng.choice(GRADES), name))
        kind, code = BAD_KINDS[n % len(BAD_KINDS)]
        good_bytes = encode(relic(1000 * n + 99, (800, 600)), "JPEG")
        bad = {"truncated": good_bytes[: len(good_bytes) // 2], "not_an_image": "这不是图像 / not an image\n".encode() * 40,
               "empty": b""}[kind]
        new.append(self._write(f"bad-{n:02d}-{kind}.{'tif' if kind == 'not_an_image' else 'jpg'}", bad, good=False, code=code))
        earlier = rng.choice([d for d in self.dropped + new if d.good and d.path.parent == self.inbox])
        new.append(self._write(f"copy-{n:02d}-of-{earlier.name}", earlier.path.read_bytes(), good=True))
        if n % 2 == 0:  # another studio's scan that happens to carry an earlier file's name
            new.append(self._write(f"studio-{n:02d}/{earlier.name}", encode(relic(1000 * n + 50, (1000, 750)), "PNG"), good=True))
        self.dropped += new
        self._write_sheet()
        return new

    def tidy_up(self, this_round: list[Dropped], moved_to: Path, status_of: Callable[[str], str | None]) -> str:
        """The studio takes one of this round's good scans out of the inbox before the re-run, preferring
        one the killed run already kept but did not finish. No other inbox file may carry its bytes."""
        in_inbox = Counter(d.sha256 for d in self.dropped if not d.moved_away)
        candidates = [d for d in this_round if d.good and in_inbox[d.sha256] == 1 and d.path.parent == self.inbox]
        if not candidates:
            return ""
        def kept(d: Dropped) -> bool:
            return (self.store_root / original_key(d.sha256)).is_file()

        chosen = self.tidy_rng.choice([d for d in candidates if kept(d) and status_of(d.sha256) in (None, "received")] or candidates)
        was_kept = kept(chosen)
        moved_to.mkdir(parents=True, exist_ok=True)
        target = moved_to / chosen.name
        shutil.move(chosen.path, target)
        self.dropped[self.dropped.index(chosen)] = replace(chosen, path=target, moved_away=True, kept_before_move=was_kept)
        return (f"; studio moved {chosen.name} away (item {status_of(chosen.sha256) or 'not registered'}, "
                f"original {'kept' if was_kept else 'not kept'})")

    def _write(self, relative: str, data: bytes, *, good: bool, code: str | None = None) -> Dropped:
        path = self.inbox / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return Dropped(path=path, sha256=sha256_file(path), good=good, expected_code=code)

    def _write_sheet(self) -> None:
        lines = ["总登记号,藏品名称,类别,年代,材质,级别,文件名"]
        lines += [f"{number},文物{number},陶器,汉,陶,{grade},{name}" for number, grade, name in self.sheet_rows]
        tmp = self.inbox / ".accession_sheet.csv.part"
        tmp.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, self.inbox / "accession_sheet.csv")


# -- the issuer: the real sandbox over HTTP, slow the way chains are --------------------------------


class SlowAnswers:
    """ASGI wrapper: a mint's answer leaves only ``delay_s`` after the issuer committed it."""

    def __init__(self, app: Any, delay_s: float) -> None:
        self.app, self.delay_s = app, delay_s

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return

        async def slow_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(self.delay_s)
            await send(message)

        await self.app(scope, receive, slow_send)


# -- watching the catalogue and the ledger from outside ---------------------------------------------


class Probe:
    """Plain read-only SQL on the two SQLite files, cheap enough to poll every few milliseconds."""

    def __init__(self, catalogue_db: Path, ledger_db: Path) -> None:
        self.catalogue_db, self.ledger_db = catalogue_db, ledger_db

    def rows(self, db: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        path = self.catalogue_db if db == "catalogue" else self.ledger_db
        if not path.exists():
            return []
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # the ledger's schema is created on its first start
                return []
            raise
        finally:
            conn.close()

    def one(self, db: str, sql: str, *args: Any) -> Any:
        found = self.rows(db, sql, *args)
        return found[0][0] if found else None

    def last_id(self, table: str) -> int:
        return self.one("catalogue", f"SELECT COALESCE(MAX(id), 0) FROM {table}") or 0

    def run(self, after_id: int) -> dict[str, Any] | None:
        found = self.rows("catalogue", "SELECT id, files_total, files_done, finished_at FROM ingest_runs WHERE id > ? "
                                       "ORDER BY id LIMIT 1", after_id)
        return dict(zip(("id", "total", "done", "finished"), found[0], strict=True)) if found else None

    def batch(self, after_id: int) -> dict[str, Any] | None:
        found = self.rows("catalogue", "SELECT id, batch_ref, idempotency_key, status FROM mint_batches WHERE id > ? "
                                       "ORDER BY id LIMIT 1", after_id)
        return dict(zip(("id", "ref", "key", "status"), found[0], strict=True)) if found else None

    def item_status(self, sha256: str) -> str | None:
        return self.one("catalogue", "SELECT i.status FROM source_files s JOIN items i ON i.id = s.item_id "
                                     "WHERE s.sha256 = ? LIMIT 1", sha256)

    def issuer_key_state(self, key: str) -> str | None:
        return self.one("ledger", "SELECT state FROM idempotency_keys WHERE key = ?", key)

    def issuer_tokens(self, batch_ref: str) -> int:
        return self.one("ledger", "SELECT COUNT(*) FROM tokens WHERE batch_ref = ?", batch_ref) or 0


# -- processes --------------------------------------------------------------------------------------


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (the launcher and decoder workers in their own groups included)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's reaping is missing


def survivors_of(pids: set[int]) -> list[int]:
    """Processes of the killed run still alive once the kernel had time to deliver every death signal."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return sorted(p for p in pids if alive(p))


def kill_when(process: subprocess.Popen[bytes], event: Callable[[], bool], delay_s: float) -> tuple[bool, list[int]]:
    """Wait for ``event`` (or for the process to end by itself), sleep ``delay_s``, SIGKILL the process group.
    Returns (killed while running, pids of the killed run that survived)."""
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while not event():
        if process.poll() is not None:
            return False, []
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError(f"the event never came within {EVENT_TIMEOUT_S} s")
        time.sleep(0.005)
    time.sleep(delay_s)
    family = descendants(process.pid)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    code = process.wait()
    return code == -signal.SIGKILL, survivors_of(family)
