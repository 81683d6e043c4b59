"""The storage interface, key rules and the create-only write protocol both backends share."""

from __future__ import annotations

import contextlib
import hashlib
import io
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from relicflow.errors import IntegrityError, StorageError

if TYPE_CHECKING:
    pass
OCTET_STREAM = "application/octet-stream"
CHUNK_SIZE = 1024 * 1024
SIDECAR_SUFFIX = ".sha256"


class InvalidKey(StorageError, ValueError):
    """A key that could escape the store root or collide with temporary files or checksum sidecars."""


class ObjectNotFound(StorageError):
    """The key holds no object."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str  # hex
    created: bool  # False when the same content was already there (idempotent re-run)


@dataclass(frozen=True)
class TemporaryCleanup:
    """What ``remove_stale_temporaries`` did: the leftovers it removed, and how many recent ones it kept."""

    removed: tuple[str, ...]  # store-relative names (LocalStore) or "key (upload id)" (S3)
    kept: int  # temporaries started at or after the cut-off: a write may still be in progress


class ObjectStore(Protocol):
    """What flows and tasks may do with stored objects: create, read, check. Never modify or delete.

    The one exception is ``remove_stale_temporaries``: it deletes only the store's own leftovers of
    interrupted writes (never an object under a real key), for the scheduled fixity flow.
    """

    url: str

    def put_bytes(self, key: str, data: bytes, *, content_type: str = OCTET_STREAM,
                  sha256: str | None = None) -> StoredObject: ...
    def put_file(self, key: str, path: Path, *, content_type: str = OCTET_STREAM,
                 sha256: str | None = None) -> StoredObject: ...
    def get_bytes(self, key: str) -> bytes: ...
    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]: ...
    def exists(self, key: str) -> bool: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def head(self, key: str) -> StoredObject | None: ...
    def verify(self, key: str, sha256: str) -> bool: ...
    def rehash(self, key: str) -> StoredObject: ...
    def local_path(self, key: str) -> Path | None: ...
    def remove_stale_temporaries(self, *, started_before: datetime) -> TemporaryCleanup: ...


_KEY_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda k: not k, "it is empty"),
    (lambda k: k.startswith("/"), "it is an absolute path"),
    (lambda k: "\\" in k, "it contains a backslash"),
    (lambda k: any(ord(c) < 32 or c == "\x7f" for c in k), "it contains a control character"),
    (lambda k: any(s in ("", ".", "..") for s in k.split("/")), "it has an empty, '.' or '..' segment"),
    (lambda k: any(s.startswith(".") for s in k.split("/")), "a segment starts with '.' (reserved)"),
    (lambda k: k.endswith(SIDECAR_SUFFIX), f"it ends with {SIDECAR_SUFFIX!r} (reserved for sidecars)"),
    (lambda k: len(k.encode()) > 1000, "it is longer than 1000 bytes"),
)


def check_key(key: str) -> str:
    """Return ``key`` if it is safe both as a relative path on disk and as an S3 key.

    Segments starting with '.' are reserved for LocalStore's temporary files and keys ending in
    '.sha256' for its checksum sidecars; every backend applies the same rules so keys stay portable.
    """
    for broken, problem in _KEY_RULES:
        if broken(key):
            raise InvalidKey(f"Invalid object key {key!r}: {problem}.")
    return key


def _check_sha(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a lowercase hex SHA-256: {sha256!r}")
    return sha256


def original_key(sha256: str) -> str:
    """Content address of an original master; the two-character fan-out keeps directories small."""
    return f"originals/{_check_sha(sha256)[:2]}/{sha256}"


def derivative_key(sha256: str, name: str) -> str:
    """Where a derivative of the original ``sha256`` lives; ``name`` must be deterministic."""
    return check_key(f"derivatives/{_check_sha(sha256)[:2]}/{sha256}/{name}")


def put_original(store: ObjectStore, path: Path, sha256: str) -> StoredObject:
    """Store a master under its content address; IntegrityError if the bytes do not hash to ``sha256``.

    The backends hash the bytes actually written before publishing them (LocalStore) or before and
    while uploading (S3Store), so a file that changed while being copied is never stored.
    """
    return store.put_file(original_key(sha256), path, sha256=sha256)


def _hash_stream(src: BinaryIO, out: BinaryIO | None = None) -> tuple[str, int]:
    """SHA-256 and length of a stream read in bounded chunks, optionally copying it to ``out``."""
    digest, size = hashlib.sha256(), 0
    while chunk := src.read(CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
        if out is not None:
            out.write(chunk)
    return digest.hexdigest(), size


def _settle(url: str, existing: StoredObject, sha256: str) -> StoredObject:
    """The create-only rule for a key that is already taken: same bytes is a no-op, else refuse."""
    if existing.sha256 != sha256:
        raise IntegrityError(f"{url}/{existing.key} already holds different content (sha256 "
                             f"{existing.sha256}, new content {sha256}); stored objects are never replaced.")
    return StoredObject(existing.key, existing.size, existing.sha256, created=False)


def _mismatch(url: str, key: str, expected: str, actual: str) -> IntegrityError:
    return IntegrityError(f"Refused to store {url}/{key}: the bytes read hash to {actual}, not the expected "
                          f"{expected}; the file may have changed while it was being copied. Nothing was stored.")


@contextlib.contextmanager
def _open_source(path: Path, url: str, key: str) -> Iterator[BinaryIO]:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise StorageError(f"Could not read {path} to store it as {url}/{key}: {exc.strerror or exc}.") from exc
    with f:
        yield f


class _CreateOnlyStore(ABC):
    """What both backends share: the put_* entry points, and reads built on ``open_read``.

    ``sha256``, when given to a put, is the hash the caller expects: nothing is stored unless the bytes
    written hash to it, and a key already holding it is accepted without reading the source again.
    """

    url: str

    def put_bytes(self, key: str, data: bytes, *, content_type: str = OCTET_STREAM,
                  sha256: str | None = None) -> StoredObject:
        return self._put(key, io.BytesIO(data), sha256, content_type)

    def put_file(self, key: str, path: Path, *, content_type: str = OCTET_STREAM,
                 sha256: str | None = None) -> StoredObject:
        """Streams ``path`` in 1 MiB chunks, hashing as it goes; never holds the whole file in memory."""
        with _open_source(path, self.url, key) as src:
            return self._put(key, src, sha256, content_type)

    def get_bytes(self, key: str) -> bytes:
        with self._reading(key) as f:
            return f.read()

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def verify(self, key: str, sha256: str) -> bool:
        """Re-read the object and re-hash it (fixity); a missing object is False, an outage raises."""
        try:
            return self.rehash(key).sha256 == sha256
        except ObjectNotFound:
            return False

    def rehash(self, key: str) -> StoredObject:
        """Size and SHA-256 of the bytes actually stored, read again in bounded chunks.

        Unlike ``head`` this never uses a recorded hash (LocalStore's sidecar, S3 metadata), so a
        fixity check sees a flipped bit. ObjectNotFound if the key holds nothing; StorageError if the
        bytes cannot be read.
        """
        with self._reading(key) as f:
            sha, size = _hash_stream(f)
        return StoredObject(key, size, sha, created=False)

    @contextlib.contextmanager
    def _reading(self, key: str) -> Iterator[BinaryIO]:
        """``open_read`` with errors during the read translated too (only our own code runs inside)."""
        with self.open_read(key) as f, self._errors("read", key):
            yield f

    @abstractmethod
    def _put(self, key: str, src: BinaryIO, expected: str | None, content_type: str) -> StoredObject: ...
    @abstractmethod
    def _errors(self, action: str, key: str) -> AbstractContextManager[None]: ...
    @abstractmethod
    def head(self, key: str) -> StoredObject | None: ...
    @abstractmethod
    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]: ...
    @abstractmethod
    def remove_stale_temporaries(self, *, started_before: datetime) -> TemporaryCleanup: ...


