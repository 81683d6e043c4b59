"""S3Store: S3 or an S3-compatible store through boto3, create-only with IfNoneMatch and SHA-256 checksums."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from relicflow.errors import IntegrityError, StorageError, StorageUnavailable

if TYPE_CHECKING:
    pass
from relicflow.storage.base import (
    ObjectNotFound,
    StoredObject,
    TemporaryCleanup,
    _CreateOnlyStore,
    _hash_stream,
    _mismatch,
    _settle,
    check_key,
)

MAX_SINGLE_PUT = 5 * 1024**3  # S3's limit for one PutObject; see S3Store._put
# botocore's retry modes. "standard" (the default here) retries throttling (SlowDown), 5xx, timeouts and
# dropped connections with capped exponential backoff and a per-client retry quota; "adaptive" adds a
# client-side rate limiter that slows every later request of the client after throttling, which AWS
# recommends only for specialised single-tenant uses. "legacy" is not offered.
RETRY_MODES = ("standard", "adaptive")

# What a technician should check, by S3 error code.
_S3_HINTS = {
    "NoSuchBucket": "the bucket does not exist (create it, or correct storage_url)",
    "AccessDenied": "access was denied; check the credentials and the bucket policy",
    "InvalidAccessKeyId": "the store does not know this access key; check AWS_ACCESS_KEY_ID",
    "SignatureDoesNotMatch": "the secret key is wrong; check AWS_SECRET_ACCESS_KEY",
    "SlowDown": "the store is overloaded; try again later",
    "ServiceUnavailable": "the store is unavailable; try again later",
    "InternalError": "the store had an internal error; try again later",
}
_UNAVAILABLE_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "NoSuchBucket", "AccessDenied",
                      "InvalidAccessKeyId", "SignatureDoesNotMatch", "QuotaExceeded", "AccountProblem"}
_DIGEST_CODES = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}


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
                 read_timeout: float = 60.0, retry_mode: str = "standard") -> None:
        """``max_attempts`` counts the first try; ``read_timeout`` is the longest wait for any bytes
        of an answer, so a store that is slow but answering within it works without retries."""
        if retry_mode not in RETRY_MODES:
            raise ValueError(f"retry_mode must be one of {RETRY_MODES}, not {retry_mode!r}")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        # MinIO, Ceph and moto expect path-style addressing
        options: dict[str, Any] = {"s3": {"addressing_style": "path"}} if endpoint_url else {}
        config = Config(region_name=region, retries={"mode": retry_mode, "total_max_attempts": max_attempts},
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
            metadata = exc.response.get("ResponseMetadata", {})
            status = metadata.get("HTTPStatusCode")
            hint = _S3_HINTS.get(code) or f"the store answered {code or status}: {error.get('Message', '')}"
            if metadata.get("RetryAttempts"):
                hint += f" (gave up after {1 + metadata['RetryAttempts']} attempts)"
            # the store itself is failing or overloaded (after botocore's retries), or refuses every write
            # (quota, credentials, missing bucket): nothing any file could do differently
            unavailable = (isinstance(status, int) and status >= 500) or code in _UNAVAILABLE_CODES
        elif isinstance(exc, NoCredentialsError):
            hint = "no S3 credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
            unavailable = True
        elif isinstance(exc, (BotoConnectionError, HTTPClientError)):
            hint = (f"the storage endpoint {self.endpoint} could not be reached ({exc}); check the endpoint "
                    "URL, the network and that the storage service is running")
            unavailable = True
        else:
            hint, unavailable = str(exc), False
        return (StorageUnavailable if unavailable else StorageError)(f"Could not {action} {where}: {hint}.")

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

    def list_keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted (S3 lists in key order; pages of 1,000 are followed)."""
        name = self._name(prefix.rstrip("/")) + "/"
        keys: list[str] = []
        with self._errors("list", prefix):
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=name):
                keys += [o["Key"].removeprefix(f"{self.prefix}/" if self.prefix else "") for o in page.get("Contents", [])]
        return sorted(keys)

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

    def remove_stale_temporaries(self, *, started_before: datetime) -> TemporaryCleanup:
        """Abort incomplete multipart uploads under this store's prefix started before the cut-off.

        S3Store itself only makes single PUTs, which are atomic, but other tools (or a future
        multipart path) leave the parts of an interrupted upload stored and billed, invisible to
        listings, until someone aborts them.
        """
        removed: list[str] = []
        kept = 0
        prefix = f"{self.prefix}/" if self.prefix else ""
        with self._errors("list the incomplete uploads under", "*"):
            pages = self._client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for upload in page.get("Uploads", []):
                    name, upload_id = upload["Key"], upload["UploadId"]
                    if upload["Initiated"] >= started_before:
                        kept += 1
                        continue
                    try:
                        self._client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
                    except ClientError as exc:
                        if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":  # finished or aborted meanwhile
                            raise
                        continue
                    removed.append(f"{name.removeprefix(prefix)} (upload {upload_id})")
        return TemporaryCleanup(tuple(sorted(removed)), kept)


