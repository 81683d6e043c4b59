"""Object storage for masters, derivatives and packages: one create-only interface, two backends.

Objects are written once and never modified: writing a key that already holds the same bytes is a
no-op (``created=False``), so every stage can be re-run; different bytes under a taken key raise
IntegrityError, because a master or derivative that silently changed would break the chain of evidence
from studio to issuer. ``LocalStore`` keeps read-only files under a directory (the embedded default);
``S3Store`` talks to S3 or an S3-compatible store through boto3; :func:`open_store` picks one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import url2pathname

from relicflow.errors import ConfigurationError
from relicflow.storage.base import (
    InvalidKey,
    ObjectNotFound,
    ObjectStore,
    StoredObject,
    TemporaryCleanup,
    check_key,
    derivative_key,
    original_key,
    put_original,
)
from relicflow.storage.local import LocalStore
from relicflow.storage.s3 import S3Store

if TYPE_CHECKING:
    from relicflow.settings import Settings

__all__ = [
    "InvalidKey", "LocalStore", "ObjectNotFound", "ObjectStore", "S3Store", "StoredObject",
    "TemporaryCleanup", "check_key", "derivative_key", "open_store", "original_key", "put_original",
]


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
        return S3Store(parts.netloc, parts.path.strip("/"), settings.s3_endpoint_url, settings.s3_region,
                       max_attempts=settings.s3_max_attempts, connect_timeout=settings.s3_connect_timeout_s,
                       read_timeout=settings.s3_read_timeout_s, retry_mode=settings.s3_retry_mode)
    raise ConfigurationError(
        f"storage_url {url!r} is not supported: use file:///absolute/path for a local directory or "
        "s3://bucket/prefix for S3 or an S3-compatible store (set RELICFLOW_STORAGE_URL)."
    )
