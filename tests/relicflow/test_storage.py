"""Contract tests of relicflow.storage, run against both backends (a temp dir and moto's S3 server)."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from moto_client import moto_client

from relicflow.errors import ConfigurationError, IntegrityError, StorageError
from relicflow.settings import Settings, load_settings
from relicflow.storage import (
    InvalidKey,
    LocalStore,
    ObjectNotFound,
    ObjectStore,
    S3Store,
    StoredObject,
    derivative_key,
    open_store,
    original_key,
    put_original,
)

BUCKET = "relicflow-test"
MIB = 1024 * 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="session")
def s3_bucket(moto_s3_endpoint: str) -> str:
    moto_client(moto_s3_endpoint, BUCKET)
    return BUCKET


@pytest.fixture
def s3_store(s3_bucket: str, moto_s3_endpoint: str, aws_test_env: None) -> S3Store:
    """A fresh prefix per test, so tests never see each other's objects."""
    return S3Store(s3_bucket, f"run-{uuid.uuid4().hex[:8]}/objects", moto_s3_endpoint, "us-east-1")


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    return request.getfixturevalue("s3_store")


def test_round_trip(store: ObjectStore) -> None:
    data = b"bronze ding, rubbing scan\x00\xff" * 100
    stored = store.put_bytes("scans/ding.tif", data, content_type="image/tiff")
    assert stored == StoredObject("scans/ding.tif", len(data), sha(data), created=True)
    assert store.get_bytes("scans/ding.tif") == data
    with store.open_read("scans/ding.tif") as f:
        assert f.read(6) + f.read() == data
    assert store.exists("scans/ding.tif")
    assert store.head("scans/ding.tif") == StoredObject("scans/ding.tif", len(data), sha(data), created=False)
    assert not store.exists("scans/missing.tif")
    assert store.head("scans/missing.tif") is None
    with pytest.raises(ObjectNotFound):
        store.get_bytes("scans/missing.tif")
    with pytest.raises(ObjectNotFound):
        with store.open_read("scans/missing.tif"):
            pass


def test_empty_object(store: ObjectStore) -> None:
    assert store.put_bytes("empty", b"").sha256 == sha(b"")
    assert store.get_bytes("empty") == b""
    assert store.verify("empty", sha(b""))


def test_rewriting_same_content_is_a_no_op(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(4096)
    assert store.put_bytes("k/a.bin", data).created
    again = store.put_bytes("k/a.bin", data)
    assert again == StoredObject("k/a.bin", len(data), sha(data), created=False)
    source = tmp_path / "a.bin"
    source.write_bytes(data)
    assert store.put_file("k/a.bin", source) == again
    assert store.put_file("k/a.bin", source, sha256=sha(data)) == again


def test_different_content_under_same_key_is_refused(store: ObjectStore, tmp_path: Path) -> None:
    store.put_bytes("k/b.bin", b"original master")
    with pytest.raises(IntegrityError, match="never replaced"):
        store.put_bytes("k/b.bin", b"tampered master")
    source = tmp_path / "other.bin"
    source.write_bytes(b"another file")
    with pytest.raises(IntegrityError):
        store.put_file("k/b.bin", source)
    assert store.get_bytes("k/b.bin") == b"original master"
    assert store.head("k/b.bin").sha256 == sha(b"original master")  # type: ignore[union-attr]


def test_concurrent_writers_create_exactly_once(store: ObjectStore) -> None:
    data = os.urandom(256 * 1024)
    results: list[StoredObject] = []
    barrier = threading.Barrier(6)

    def write() -> None:
        barrier.wait()
        results.append(store.put_bytes("race/obj", data))

    threads = [threading.Thread(target=write) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and sum(r.created for r in results) == 1
    assert store.get_bytes("race/obj") == data


def _write_random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(size // MIB):
            chunk = os.urandom(MIB)
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


def test_put_file_streams_in_bounded_memory(store: ObjectStore, tmp_path: Path) -> None:
    size = 30 * MIB
    source = tmp_path / "master.tif"
    expected = _write_random_file(source, size)
    tracemalloc.start()
    try:
        stored = store.put_file("masters/master.tif", source, content_type="image/tiff")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored == StoredObject("masters/master.tif", size, expected, created=True)
    assert peak < size // 4, f"peak Python allocation {peak / MIB:.1f} MiB for a {size // MIB} MiB file"
    assert store.verify("masters/master.tif", expected)


def test_verify(store: ObjectStore) -> None:
    store.put_bytes("v/obj", b"fixity")
    assert store.verify("v/obj", sha(b"fixity"))
    assert not store.verify("v/obj", sha(b"something else"))
    assert not store.verify("v/missing", sha(b"fixity"))


def test_verify_detects_a_corrupted_local_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "objects")
    data = os.urandom(10_000)
    store.put_bytes("originals/x", data)
    path = store.local_path("originals/x")
    assert path is not None and path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(5000)
        byte = f.read(1)
        f.seek(5000)
        f.write(bytes([byte[0] ^ 0x01]))
    assert store.head("originals/x").sha256 == sha(data)  # type: ignore[union-attr]  # sidecar remembers
    assert not store.verify("originals/x", sha(data))


def test_local_layout_has_sidecars_and_no_leftovers(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "objects")
    store.put_bytes("a/b/c.jpg", b"jpeg")
    files = sorted(p.name for p in (tmp_path / "objects" / "a" / "b").iterdir())
    assert files == ["c.jpg", "c.jpg.sha256"]  # no temporary files left behind
    sidecar = tmp_path / "objects" / "a" / "b" / "c.jpg.sha256"
    assert sidecar.read_text() == f"{sha(b'jpeg')}  c.jpg\n"  # `sha256sum -c` format
    (tmp_path / "objects" / "a" / "b").chmod(0o755)
    sidecar.unlink()  # as after a crash between publishing and writing the sidecar
    assert store.head("a/b/c.jpg") == StoredObject("a/b/c.jpg", 4, sha(b"jpeg"), created=False)
    assert sidecar.exists()
    with pytest.raises(IntegrityError):
        store.put_bytes("a/b/c.jpg", b"png")


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/etc/passwd", "a\\b", "", "a//b", "a/",
                                 ".hidden", "a/.tmp", "x.tif.sha256", "bad\nkey"])
def test_unsafe_keys_are_rejected(store: ObjectStore, key: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidKey):
        store.put_bytes(key, b"x")
    with pytest.raises(InvalidKey):
        store.exists(key)
    assert not (tmp_path / "escape").exists()


def test_keys_and_put_original(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(2048)
    digest = sha(data)
    assert original_key(digest) == f"originals/{digest[:2]}/{digest}"
    assert derivative_key(digest, "access.jpg") == f"derivatives/{digest[:2]}/{digest}/access.jpg"
    with pytest.raises(ValueError):
        original_key("ABC")
    with pytest.raises(InvalidKey):
        derivative_key(digest, "../access.jpg")
    source = tmp_path / "scan.tif"
    source.write_bytes(data)
    assert put_original(store, source, digest) == StoredObject(original_key(digest), 2048, digest, created=True)
    assert not put_original(store, source, digest).created
    assert store.get_bytes(original_key(digest)) == data


def test_put_original_refuses_bytes_that_do_not_match(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "scan.tif"
    source.write_bytes(b"changed after hashing")
    claimed = sha(b"as it was when hashed")
    with pytest.raises(IntegrityError, match="Nothing was stored"):
        put_original(store, source, claimed)
    assert not store.exists(original_key(claimed))
    if isinstance(store, LocalStore):  # the temporary copy was removed too
        assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_local_path_only_for_local_store(store: ObjectStore) -> None:
    store.put_bytes("p/q", b"bytes")
    path = store.local_path("p/q")
    if isinstance(store, LocalStore):
        assert path is not None and path.read_bytes() == b"bytes"
        assert store.local_path("p/missing") is None
    else:
        assert path is None


def test_s3_wire_format(s3_store: S3Store, moto_s3_endpoint: str) -> None:
    """Other tools (and auditors) see the checksum S3 verified and the hex sha as metadata."""
    s3_store.put_bytes("w/obj.json", b"{}", content_type="application/json")
    client = boto3.client("s3", endpoint_url=moto_s3_endpoint)
    head = client.head_object(Bucket=BUCKET, Key=f"{s3_store.prefix}/w/obj.json", ChecksumMode="ENABLED")
    assert head["Metadata"] == {"sha256": sha(b"{}")}
    assert base64.b64decode(head["ChecksumSHA256"]) == bytes.fromhex(sha(b"{}"))
    assert head["ContentType"] == "application/json"


def test_s3_unreachable_endpoint_names_the_endpoint(aws_test_env: None) -> None:
    store = S3Store(BUCKET, "p", "http://127.0.0.1:1", "us-east-1", max_attempts=1,
                    connect_timeout=0.5, read_timeout=0.5)
    started = time.monotonic()
    for action in (lambda: store.put_bytes("k", b"x"), lambda: store.head("k"), lambda: store.verify("k", sha(b"x"))):
        with pytest.raises(StorageError, match=r"127\.0\.0\.1:1.*could not be reached") as info:
            action()
        assert BUCKET in str(info.value)
    assert time.monotonic() - started < 5


def test_s3_missing_bucket_is_explained(moto_s3_endpoint: str, aws_test_env: None) -> None:
    store = S3Store("no-such-bucket-here", "", moto_s3_endpoint, "us-east-1")
    with pytest.raises(StorageError, match="no-such-bucket-here.*bucket does not exist"):
        store.put_bytes("k", b"x")


@pytest.fixture
def settings_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Settings]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RELICFLOW_CONFIG", str(tmp_path / "absent.toml"))
    for name in list(os.environ):
        if name.startswith("RELICFLOW_") and name != "RELICFLOW_CONFIG":
            monkeypatch.delenv(name)
    return lambda **kw: load_settings(data_dir=tmp_path / "data", **kw)


def test_open_store_parses_urls(settings_for: Callable[..., Settings], tmp_path: Path, aws_test_env: None) -> None:
    s3 = open_store(settings_for(storage_url="s3://relics/some/prefix/", s3_endpoint_url="http://127.0.0.1:9"))
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.prefix, s3.url, s3.endpoint) == ("relics", "some/prefix", "s3://relics/some/prefix",
                                                           "http://127.0.0.1:9")
    assert isinstance(bare := open_store(settings_for(storage_url="s3://relics")), S3Store)
    assert bare.prefix == "" and bare.url == "s3://relics"
    local = open_store(settings_for(storage_url=(tmp_path / "my objects").as_uri()))
    assert isinstance(local, LocalStore) and local.root == tmp_path / "my objects"
    default = open_store(settings_for())
    assert isinstance(default, LocalStore) and default.root == tmp_path / "data" / "objects"
    for bad, why in [("ftp://host/objects", "not supported"), ("s3:///prefix", "names no bucket"),
                     ("file://relative/path", "absolute file URL"), ("/plain/path", "not supported")]:
        with pytest.raises(ConfigurationError, match=why):
            open_store(settings_for(storage_url=bad))
