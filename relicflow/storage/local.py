"""LocalStore: read-only files under a directory (the embedded default), published with os.link."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from relicflow.errors import StorageError, StorageUnavailable
from relicflow.storage.writers import writer_has_ended, writer_tag

if TYPE_CHECKING:
    pass
from relicflow.storage.base import (
    SIDECAR_SUFFIX,
    ObjectNotFound,
    StoredObject,
    TemporaryCleanup,
    _check_sha,
    _CreateOnlyStore,
    _hash_stream,
    _mismatch,
    _settle,
    check_key,
)


# What tempfile.mkstemp(prefix=".<name>.<writer>.", suffix=".tmp") makes in _put and _write_sidecar (see
# _temporary_prefix). Keys never have a segment starting with '.', so nothing matching this is an object.
_TEMPORARY_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


class LocalStore(_CreateOnlyStore):
    """Objects as read-only (0o444) files under a root directory; the embedded default.

    A write goes to a temporary file beside the target, is fsynced and published with ``os.link``,
    which fails if the key exists: a crash never leaves a partial object under a real key, and of two
    concurrent writers only one publishes. The SHA-256 is cached in a sidecar ``<key>.sha256``
    (``sha256sum -c`` format) so ``head`` never re-reads a 500 MB master. It is written *after* the link,
    because a sidecar written before could come from the writer that then loses the race and describe
    the other's bytes; if a crash loses it, ``head`` recomputes it from the immutable file once.
    ``content_type`` is not recorded; the key's extension carries it.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def list_keys(self, prefix: str) -> list[str]:
        with self._errors("list", prefix):
            return _listed(self.root, prefix)

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"No object {key!r} in {self.root}.") from exc
        except OSError as exc:
            # a full, over-quota or read-only disk refuses every write alike: the installation's problem
            kind = StorageUnavailable if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) else StorageError
            raise kind(f"Could not {action} {key!r} in {self.root}: {exc.strerror or exc}.") from exc

    def _put(self, key: str, src: BinaryIO, expected: str | None, content_type: str) -> StoredObject:
        target = self._path(key)
        existing = self.head(key)
        if existing is not None:  # re-run: hash the source only if we were not told its hash
            return _settle(self.url, existing, expected or _hash_stream(src)[0])
        with self._errors("write", key):
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=_temporary_prefix(target.name), suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as out:
                    sha, size = _hash_stream(src, out)
                    out.flush()
                    os.fsync(out.fileno())
                if expected is not None and sha != expected:
                    raise _mismatch(self.url, key, expected, sha)
                os.chmod(tmp_name, 0o444)
                try:
                    os.link(tmp_name, target)
                except FileExistsError:  # lost a race with a concurrent writer
                    winner = self.head(key)
                    if winner is None:
                        raise StorageError(f"{key!r} in {self.root} is taken by something that is not a stored "
                                           "object (a directory?).") from None
                    return _settle(self.url, winner, sha)
                Path(tmp_name).unlink()  # published: the temporary name must not outlive it (a second link)
                _fsync_dir(target.parent)
                self._write_sidecar(target, sha)
                return StoredObject(key, size, sha, created=True)
            finally:
                Path(tmp_name).unlink(missing_ok=True)

    def _write_sidecar(self, target: Path, sha: str) -> None:
        sidecar = target.with_name(target.name + SIDECAR_SUFFIX)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=_temporary_prefix(sidecar.name), suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(f"{sha}  {target.name}\n")
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp_name, 0o444)
            os.replace(tmp_name, sidecar)  # only ever replaces a missing or identical sidecar
        finally:
            Path(tmp_name).unlink(missing_ok=True)

    def _read_sidecar(self, target: Path) -> str | None:
        try:
            return _check_sha(target.with_name(target.name + SIDECAR_SUFFIX).read_text("ascii")[:64])
        except (OSError, UnicodeDecodeError, ValueError):
            return None

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        with self._errors("read", key):
            f = open(self._path(key), "rb")  # noqa: SIM115 - closed below
        with f:
            yield f

    def head(self, key: str) -> StoredObject | None:
        target = self._path(key)
        with self._errors("inspect", key):
            if not target.is_file():
                return None
            size, sha = target.stat().st_size, self._read_sidecar(target)
            if sha is None:
                with open(target, "rb") as f:
                    sha = _hash_stream(f)[0]
                self._write_sidecar(target, sha)
        return StoredObject(key, size, sha, created=False)

    def local_path(self, key: str) -> Path | None:
        """The file itself, for tools that need a real path; treat it as read-only."""
        path = self._path(key)
        return path if path.is_file() else None

    def remove_stale_temporaries(self, *, started_before: datetime) -> TemporaryCleanup:
        """Delete temporary files of writes that were killed: last written before ``started_before``, or
        written by a process of this host that has ended (its name says which, see storage/writers.py).

        A write that is still going touches its temporary file as it copies, so a cut-off well in the
        past (the fixity flow uses a day) never takes a live one; nor does the writer check, which only
        removes what a process that has ended left behind (a SIGKILL, the out-of-memory killer).
        """
        cutoff = started_before.timestamp()
        removed: list[str] = []
        kept = 0
        for directory, _dirs, files in os.walk(self.root, onerror=self._walk_error):
            for name in files:
                if not _TEMPORARY_NAME.match(name):
                    continue
                path = Path(directory) / name
                try:
                    info = path.lstat()
                    if not path.is_file() or path.is_symlink():
                        continue
                    if info.st_mtime >= cutoff and not writer_has_ended(name):
                        kept += 1
                        continue
                    path.unlink()
                except FileNotFoundError:  # its writer finished (or another cleaner ran) meanwhile
                    continue
                except OSError as exc:
                    raise StorageError(f"Could not remove the stale temporary file {path}: {exc.strerror or exc}.") from exc
                removed.append(path.relative_to(self.root).as_posix())
        return TemporaryCleanup(tuple(sorted(removed)), kept)

    def _walk_error(self, exc: OSError) -> None:
        if isinstance(exc, FileNotFoundError):
            return  # nothing stored yet, or a directory that went away while we walked
        raise StorageError(f"Could not list {exc.filename or self.root}: {exc.strerror or exc}.") from exc


def _listed(root: Path, prefix: str) -> list[str]:
    """Keys under ``prefix`` (a folder of keys, e.g. ``audit-anchors/``), sorted; no sidecars or temporaries."""
    folder = root / check_key(prefix.rstrip("/"))
    if not folder.is_dir():
        return []
    keys = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.endswith(SIDECAR_SUFFIX) and not _TEMPORARY_NAME.match(path.name):
            keys.append(path.relative_to(root).as_posix())
    return sorted(keys)


def _temporary_prefix(name: str) -> str:
    """``.<name>.<writer>.``: the start of a temporary file's name. The name is cut to 100 bytes so the
    whole stays inside the file system's 255 whatever the key; it is only there for people."""
    short = name.encode()[:100].decode(errors="ignore")
    tag = writer_tag()
    return f".{short}.{tag}." if tag else f".{short}."


def _fsync_dir(directory: Path) -> None:
    """Make the new directory entry durable, not only the file's bytes."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


