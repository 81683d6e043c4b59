"""Object storage for masters, derivatives and packages: one create-only interface, two backends.

Objects are written once and never modified: writing a key that already holds the same bytes is a
no-op (``created=False``), so every stage can be re-run; different bytes under a taken key raise
IntegrityError, because a master or derivative that silently changed would break the chain of evidence
from studio to issuer. ``LocalStore`` keeps read-only files under a directory (the embedded default);
``S3Store`` talks to S3 or an S3-compatible store through boto3; :func:`open_store` picks one.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from urllib.parse import urlsplit
from urllib.request import url2pathname

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from relicflow.errors import ConfigurationError, IntegrityError, StorageError

if TYPE_CHECKING:
    from relicflow.settings import Settings

OCTET_STREAM = "application/octet-stream"
CHUNK_SIZE = 1024 * 1024
MAX_SINGLE_PUT = 5 * 1024**3  # S3's limit for one PutObject; see S3Store._put
SIDECAR_SUFFIX = ".sha256"

# What a technician should check, by S3 error code.
_S3_HINTS = {
    "NoSuchBucket": "the bucket does not exist (create it, or correct storage_url)",
    "AccessDenied": "access was denied; check the credentials and the bucket policy",
    "InvalidAccessKeyId": "the store does not know this access key; check AWS_ACCESS_KEY_ID",
    "SignatureDoesNotMatch": "the secret key is wrong; check AWS_SECRET_ACCESS_KEY",
    "SlowDown": "the store is overloaded; try again later",
    "ServiceUnavailable": "the store is unavailable; try again later",
}
_DIGEST_CODES = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}


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


class ObjectStore(Protocol):
    """What flows and tasks may do with stored objects: create, read, check. Never modify or delete."""

    url: str

    def put_bytes(self, key: str, data: bytes, *, content_type: str = OCTET_STREAM,
                  sha256: str | None = None) -> StoredObject: ...
    def put_file(self, key: str, path: Path, *, content_type: str = OCTET_STREAM,
                 sha256: str | None = None) -> StoredObject: ...
    def get_bytes(self, key: str) -> bytes: ...
    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]: ...
    def exists(self, key: str) -> bool: ...
    def head(self, key: str) -> StoredObject | None: ...
    def verify(self, key: str, sha256: str) -> bool: ...
    def local_path(self, key: str) -> Path | None: ...


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
            with self._reading(key) as f:
                return _hash_stream(f)[0] == sha256
        except ObjectNotFound:
            return False

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

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"No object {key!r} in {self.root}.") from exc
        except OSError as exc:
            raise StorageError(f"Could not {action} {key!r} in {self.root}: {exc.strerror or exc}.") from exc

    def _put(self, key: str, src: BinaryIO, expected: str | None, content_type: str) -> StoredObject:
        target = self._path(key)
        existing = self.head(key)
        if existing is not None:  # re-run: hash the source only if we were not told its hash
            return _settle(self.url, existing, expected or _hash_stream(src)[0])
        with self._errors("write", key):
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
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
                _fsync_dir(target.parent)
                self._write_sidecar(target, sha)
                return StoredObject(key, size, sha, created=True)
            finally:
                Path(tmp_name).unlink(missing_ok=True)

    def _write_sidecar(self, target: Path, sha: str) -> None:
        sidecar = target.with_name(target.name + SIDECAR_SUFFIX)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{sidecar.name}.", suffix=".tmp")
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


def _fsync_dir(directory: Path) -> None:
    """Make the new directory entry durable, not only the file's bytes."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _HashingReader:
    """File wrapper hashing what botocore actually sends, to catch a file changing mid-upload.

    botocore reads the body to sign it (over plain HTTP) and again to send it, seeking back to the
    start in between and before each retry, so the hash restarts whenever it returns to position 0.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw, self._digest = raw, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        self._digest.update(chunk)
        return chunk

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        pos = self._raw.seek(offset, whence)
        if pos == 0:
            self._digest = hashlib.sha256()
        return pos

    def tell(self) -> int:
        return self._raw.tell()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class S3Store(_CreateOnlyStore):
    """Objects in an S3 bucket under an optional prefix; production storage.

    Uploads carry ``x-amz-checksum-sha256`` so S3 verifies the bytes it receives, ``If-None-Match: *``
    so a key is only ever created, and the hex SHA-256 as metadata ``sha256``. Credentials come from
    boto3's usual chain (AWS_ACCESS_KEY_ID..., AWS_PROFILE, instance roles).
    """

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str = "us-east-1", *, max_attempts: int = 5, connect_timeout: float = 10.0,
                 read_timeout: float = 60.0) -> None:
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        # MinIO, Ceph and moto expect path-style addressing
        options: dict[str, Any] = {"s3": {"addressing_style": "path"}} if endpoint_url else {}
        config = Config(region_name=region, retries={"mode": "standard", "max_attempts": max_attempts},
                        request_checksum_calculation="when_required", response_checksum_validation="when_required",
                        connect_timeout=connect_timeout, read_timeout=read_timeout, **options)
        self._client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
        self.endpoint = self._client.meta.endpoint_url

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{check_key(key)}" if self.prefix else check_key(key)

    def _error(self, exc: Exception, action: str, key: str) -> StorageError:
        """A sentence a technician can act on: what failed, which bucket and endpoint, what to check."""
        where = f"s3://{self.bucket}/{self._name(key)} at {self.endpoint}"
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            if code in _DIGEST_CODES:
                return IntegrityError(f"The store refused {where}: the bytes it received do not match "
                                      f"their SHA-256 ({code}); the file may have changed during upload.")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            hint = _S3_HINTS.get(code) or f"the store answered {code or status}: {error.get('Message', '')}"
        elif isinstance(exc, NoCredentialsError):
            hint = "no S3 credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
        elif isinstance(exc, (BotoConnectionError, HTTPClientError)):
            hint = (f"the storage endpoint {self.endpoint} could not be reached ({exc}); check the endpoint "
                    "URL, the network and that the storage service is running")
        else:
            hint = str(exc)
        return StorageError(f"Could not {action} {where}: {hint}.")

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, action, key) from exc

    def _request(self, operation: str, action: str, key: str, **kwargs: Any) -> Any:
        """One S3 call on ``key`` with errors translated; None when the key (not the bucket) is missing."""
        try:
            return getattr(self._client, operation)(Bucket=self.bucket, Key=self._name(key), **kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self._error(exc, action, key) from exc
        except BotoCoreError as exc:
            raise self._error(exc, action, key) from exc

    def _put(self, key: str, src: BinaryIO, expected: str | None, content_type: str) -> StoredObject:
        """Hash the source in chunks, then upload it as one streamed PUT (so at most 5 GB): s3transfer's
        multipart does not pass ``IfNoneMatch`` and S3 has no full-object SHA-256 for multipart uploads."""
        existing = self.head(key)
        if existing is not None and expected is not None:  # re-run: don't read a large master again
            return _settle(self.url, existing, expected)
        sha, size = _hash_stream(src)
        if expected is not None and sha != expected:
            raise _mismatch(self.url, key, expected, sha)
        if existing is not None:
            return _settle(self.url, existing, sha)
        if size > MAX_SINGLE_PUT:
            raise StorageError(f"Could not upload {self.url}/{key}: it is {size} bytes, over the 5 GB limit "
                               "of one S3 PUT (multipart uploads are not supported yet).")
        src.seek(0)
        reader = _HashingReader(src)
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=self._name(key), Body=reader, ContentLength=size,
                ContentType=content_type, Metadata={"sha256": sha}, IfNoneMatch="*",
                ChecksumAlgorithm="SHA256", ChecksumSHA256=base64.b64encode(bytes.fromhex(sha)).decode(),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise self._error(exc, "upload", key) from exc
            winner = self.head(key)  # someone else created it since our head
            if winner is None:
                raise StorageError(f"Could not upload {self.url}/{key}: a concurrent write to the same key "
                                   "is in progress; retry.") from exc
            return _settle(self.url, winner, sha)
        except BotoCoreError as exc:
            raise self._error(exc, "upload", key) from exc
        if reader.hexdigest() != sha:
            # Only reachable on stores that ignore x-amz-checksum-sha256: undo our own bad write.
            with self._errors("remove the mismatched upload", key):
                self._client.delete_object(Bucket=self.bucket, Key=self._name(key))
            raise _mismatch(self.url, key, sha, reader.hexdigest())
        return StoredObject(key, size, sha, created=True)

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        """Stream the object; errors while reading surface as botocore exceptions."""
        response = self._request("get_object", "read", key)
        if response is None:
            raise ObjectNotFound(f"No object {self.url}/{key} at {self.endpoint}.")
        with contextlib.closing(response["Body"]) as body:
            yield body

    def head(self, key: str) -> StoredObject | None:
        """Size and SHA-256 from metadata; None if absent (a HEAD cannot tell a missing bucket)."""
        r = self._request("head_object", "inspect", key, ChecksumMode="ENABLED")
        if r is None:
            return None
        sha, checksum = r.get("Metadata", {}).get("sha256", ""), r.get("ChecksumSHA256", "")
        if not sha and checksum and "-" not in checksum:  # written by another tool, full-object checksum
            sha = base64.b64decode(checksum).hex()
        if not sha:  # no recorded hash at all: compute it once (slow for large objects)
            with self._reading(key) as body:
                sha = _hash_stream(body)[0]
        return StoredObject(key, r["ContentLength"], sha, created=False)

    def local_path(self, key: str) -> Path | None:
        return None


def open_store(settings: Settings) -> ObjectStore:
    """The store named by ``settings.storage_url``: file:///abs/path or s3://bucket/prefix."""
    url = settings.storage_url
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ConfigurationError(f"storage_url {url!r} is not an absolute file URL; write it as "
                                     "file:///absolute/path/to/objects.")
        return LocalStore(Path(url2pathname(parts.path)))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigurationError(f"storage_url {url!r} names no bucket; write it as s3://bucket/prefix.")
        return S3Store(parts.netloc, parts.path.strip("/"), settings.s3_endpoint_url, settings.s3_region)
    raise ConfigurationError(
        f"storage_url {url!r} is not supported: use file:///absolute/path for a local directory or "
        "s3://bucket/prefix for S3 or an S3-compatible store (set RELICFLOW_STORAGE_URL)."
    )
