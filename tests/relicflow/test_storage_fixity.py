"""What fixity needs from the stores: re-hashing the bytes themselves, and removing the leftovers of
interrupted writes (and only those). Both backends: a temp dir and moto's S3 server on loopback."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from moto_client import moto_client

from relicflow.errors import StorageError
from relicflow.storage import (
    LocalStore,
    ObjectNotFound,
    ObjectStore,
    S3Store,
    StoredObject,
    TemporaryCleanup,
)

BUCKET = "relicflow-test"
MIB = 1024 * 1024
DAY = timedelta(days=1)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def raw_client(moto_s3_endpoint: str) -> Any:
    return moto_client(moto_s3_endpoint, BUCKET)


@pytest.fixture
def s3_store(raw_client: Any, moto_s3_endpoint: str, aws_test_env: None) -> S3Store:
    return S3Store(BUCKET, f"fixity-{uuid.uuid4().hex[:8]}/objects", moto_s3_endpoint, "us-east-1")


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    return request.getfixturevalue("s3_store")


def corrupt(store: ObjectStore, key: str, raw_client: Any | None = None) -> None:
    """Flip one byte behind the store's back, leaving its recorded hash (sidecar / metadata) as it was."""
    if isinstance(store, LocalStore):
        path = store.local_path(key)
        assert path is not None
        path.chmod(0o644)
        with open(path, "r+b") as f:
            f.seek(3)
            byte = f.read(1)
            f.seek(3)
            f.write(bytes([byte[0] ^ 0x20]))
        return
    assert isinstance(store, S3Store) and raw_client is not None
    name = f"{store.prefix}/{key}"
    head = raw_client.head_object(Bucket=BUCKET, Key=name)
    data = bytearray(raw_client.get_object(Bucket=BUCKET, Key=name)["Body"].read())
    data[3] ^= 0x20
    raw_client.put_object(Bucket=BUCKET, Key=name, Body=bytes(data), Metadata=head["Metadata"])


def test_rehash_reads_the_bytes_not_the_recorded_hash(store: ObjectStore, raw_client: Any) -> None:
    data = os.urandom(3 * MIB + 17)
    store.put_bytes("originals/aa/master", data)
    assert store.rehash("originals/aa/master") == StoredObject("originals/aa/master", len(data), sha(data), created=False)
    corrupt(store, "originals/aa/master", raw_client)
    assert store.head("originals/aa/master").sha256 == sha(data)  # type: ignore[union-attr]  # the record still says so
    changed = store.rehash("originals/aa/master")
    assert changed.size == len(data) and changed.sha256 != sha(data)
    assert not store.verify("originals/aa/master", sha(data))
    with pytest.raises(ObjectNotFound):
        store.rehash("originals/aa/missing")


def test_rehash_of_something_that_is_not_a_file_is_a_storage_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "objects")
    (tmp_path / "objects" / "originals" / "bb" / "odd").mkdir(parents=True)
    with pytest.raises(StorageError) as info:
        store.rehash("originals/bb/odd")
    assert not isinstance(info.value, ObjectNotFound) and "originals/bb/odd" in str(info.value)


_KILLED_WRITER = """
import sys
from pathlib import Path
from relicflow.storage import LocalStore
LocalStore(Path(sys.argv[1])).put_file("originals/cc/big", Path("/dev/stdin"))
"""


def interrupted_write(root: Path) -> tuple[Path, int]:
    """A real writer killed with SIGKILL halfway through copying a master: its temporary file stays.
    Returns the temporary file and the writer's pid."""
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(root)], stdin=subprocess.PIPE)
    assert child.stdin is not None
    try:
        child.stdin.write(os.urandom(MIB + 10))  # one full chunk reaches the temporary file
        child.stdin.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            temporaries = [p for p in root.rglob(".big.*.tmp") if p.stat().st_size >= MIB]
            if temporaries:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the writer never wrote its temporary file")
    finally:
        child.kill()
        child.wait()
    return temporaries[0], child.pid


def age(path: Path, by: timedelta) -> None:
    stamp = (now() - by).timestamp()
    os.utime(path, (stamp, stamp))


def test_local_stale_temporaries_are_removed_and_fresh_ones_and_objects_kept(tmp_path: Path) -> None:
    """Temporaries that do not say who wrote them (another host, an older relicflow) go by age alone."""
    store = LocalStore(tmp_path / "objects")
    kept = store.put_bytes("originals/cc/kept", b"a master that was stored properly")
    stale = store.root / "originals" / "cc" / ".big.q1w2e3r4.tmp"
    stale.write_bytes(b"half a master")
    fresh = stale.with_name(".other.abcd1234.tmp")
    fresh.write_bytes(b"a write still going on")
    stale_sidecar = stale.with_name(".kept.sha256.x1y2z3w4.tmp")
    stale_sidecar.write_bytes(b"half a sidecar")
    not_ours = stale.with_name(".DS_Store")
    not_ours.write_bytes(b"left by a desktop")
    for path in (stale, stale_sidecar, not_ours):
        age(path, 2 * DAY)

    assert store.remove_stale_temporaries(started_before=now() - 3 * DAY) == TemporaryCleanup((), 3)
    cleanup = store.remove_stale_temporaries(started_before=now() - DAY)
    assert cleanup == TemporaryCleanup(tuple(sorted(p.relative_to(store.root).as_posix() for p in (stale, stale_sidecar))), 1)
    assert not stale.exists() and not stale_sidecar.exists()
    assert fresh.exists() and not_ours.exists()
    assert store.get_bytes("originals/cc/kept") == b"a master that was stored properly"
    assert store.head("originals/cc/kept") == StoredObject(kept.key, kept.size, kept.sha256, created=False)
    assert store.remove_stale_temporaries(started_before=now() - DAY) == TemporaryCleanup((), 1)


def test_local_temporaries_of_a_killed_writer_go_at_once_and_a_live_writers_stay(tmp_path: Path) -> None:
    """Found by the crash test: writers SIGKILLed mid-write left their temporaries for a whole
    stale_temporary_age_s (a day). A temporary now names its writer; one whose writer has ended on this
    host is removed by the next clean-up, however fresh, and nothing of a live writer is touched."""
    from relicflow.storage.writers import writer_tag

    store = LocalStore(tmp_path / "objects")
    killed, pid = interrupted_write(store.root)
    host = writer_tag().split("-")[0]
    assert f".{host}-{pid}-" in killed.name  # the temporary says which process wrote it
    folder = killed.parent
    live = folder / f".live.{writer_tag()}.abcd1234.tmp"  # this test process: a write still going on
    pid_reused = folder / f".reused.{host}-{os.getpid()}-1.abcd1234.tmp"  # this pid, but another (ended) process
    other_host = folder / f".remote.w{'0' if host[1] != '0' else '1'}{host[2:]}-{pid}-1.abcd1234.tmp"
    unknown = folder / ".untagged.abcd1234.tmp"
    for path in (live, pid_reused, other_host, unknown):
        path.write_bytes(b"part of a write")

    cleanup = store.remove_stale_temporaries(started_before=now() - DAY)
    assert cleanup == TemporaryCleanup(tuple(sorted(p.relative_to(store.root).as_posix() for p in (killed, pid_reused))), 3)
    assert not killed.exists() and not pid_reused.exists()
    assert live.exists() and other_host.exists() and unknown.exists()  # judged by their age only
    assert not store.exists("originals/cc/big")


def test_local_cleanup_of_an_empty_store(tmp_path: Path) -> None:
    assert LocalStore(tmp_path / "never-written").remove_stale_temporaries(started_before=now()) == TemporaryCleanup((), 0)


def test_s3_incomplete_multipart_uploads_are_aborted_only_under_the_prefix(s3_store: S3Store, raw_client: Any) -> None:
    def start_upload(name: str) -> str:
        upload = raw_client.create_multipart_upload(Bucket=BUCKET, Key=name)
        raw_client.upload_part(Bucket=BUCKET, Key=name, UploadId=upload["UploadId"], PartNumber=1, Body=os.urandom(5 * MIB))
        return str(upload["UploadId"])

    ours = start_upload(f"{s3_store.prefix}/originals/dd/partial")
    elsewhere_name = f"other-{uuid.uuid4().hex[:8]}/partial"
    elsewhere = start_upload(elsewhere_name)
    s3_store.put_bytes("originals/dd/complete", b"stored properly")

    # moto dates every upload's Initiated 2010-11-10, so "recent" here means a cut-off before that day
    assert s3_store.remove_stale_temporaries(started_before=datetime(2010, 1, 1, tzinfo=timezone.utc)) == TemporaryCleanup((), 1)
    cleanup = s3_store.remove_stale_temporaries(started_before=now() - DAY)
    assert cleanup == TemporaryCleanup((f"originals/dd/partial (upload {ours})",), 0)
    uploads = raw_client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert [u["UploadId"] for u in uploads if u["Key"].startswith(s3_store.prefix)] == []
    assert elsewhere in [u["UploadId"] for u in uploads]
    assert s3_store.get_bytes("originals/dd/complete") == b"stored properly"
    raw_client.abort_multipart_upload(Bucket=BUCKET, Key=elsewhere_name, UploadId=elsewhere)


def test_s3_retry_and_timeout_settings_reach_the_client(tmp_path: Path, aws_test_env: None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from relicflow.settings import load_settings
    from relicflow.storage import open_store

    monkeypatch.setenv("RELICFLOW_CONFIG", str(tmp_path / "absent.toml"))
    settings = load_settings(data_dir=tmp_path, storage_url="s3://relics/p", s3_endpoint_url="http://127.0.0.1:9",
                             s3_max_attempts=7, s3_retry_mode="adaptive", s3_connect_timeout_s=1.5, s3_read_timeout_s=42)
    store = open_store(settings)
    assert isinstance(store, S3Store)
    config = store._client.meta.config
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 7}
    assert (config.connect_timeout, config.read_timeout) == (1.5, 42)
    with pytest.raises(ValueError, match="retry_mode"):
        S3Store("relics", "", "http://127.0.0.1:9", retry_mode="legacy")
    with pytest.raises(Exception, match="s3_retry_mode"):
        load_settings(data_dir=tmp_path, s3_retry_mode="legacy")
