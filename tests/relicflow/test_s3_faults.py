"""S3Store against a misbehaving store: moto's S3 server behind a fault-injecting proxy on loopback.

The bucket is versioned, so "written exactly once" is checked by counting versions, and every answer
the client sees comes over real HTTP from a real server. Transient faults are retried by botocore's
retry mode; persistent ones end in a StorageError that names the endpoint, with nothing stored and
nothing registered in the catalogue.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_proxy import Fault, FaultProxy
from moto_client import moto_client

from flows.mint import prepare_batch
from relicflow.catalogue import Catalogue
from relicflow.catalogue.ingested import IngestedImage
from relicflow.catalogue.models import MintBatch, StoredObjectRecord
from relicflow.errors import StorageError
from relicflow.storage import S3Store

pytestmark = pytest.mark.slow  # starts an HTTP server and waits out botocore's backoff and timeouts

BUCKET = "relicflow-faults"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def raw_client(moto_s3_endpoint: str) -> Any:
    """Straight to moto, past the proxy: what the store really holds."""
    return moto_client(moto_s3_endpoint, BUCKET, versioned=True)


@pytest.fixture
def proxy(moto_s3_endpoint: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto_s3_endpoint) as p:
        yield p


def make_store(proxy: FaultProxy, **options: Any) -> S3Store:
    options.setdefault("max_attempts", 5)
    options.setdefault("read_timeout", 5.0)
    options.setdefault("connect_timeout", 2.0)
    return S3Store(BUCKET, f"faults-{uuid.uuid4().hex[:8]}", proxy.url, "us-east-1", **options)


def versions(raw_client: Any, store: S3Store, key: str) -> int:
    listed = raw_client.list_object_versions(Bucket=BUCKET, Prefix=f"{store.prefix}/{key}")
    return len([v for v in listed.get("Versions", []) if v["Key"] == f"{store.prefix}/{key}"])


@pytest.mark.parametrize("retry_mode", ["standard", "adaptive"])
@pytest.mark.parametrize("fault", [Fault.slow_down(), Fault.internal_error(), Fault.drop()], ids=["503-SlowDown", "500-InternalError", "dropped"])
def test_transient_faults_are_retried_and_the_object_is_written_once(
        proxy: FaultProxy, raw_client: Any, aws_test_env: None, fault: Fault, retry_mode: str) -> None:
    store = make_store(proxy, retry_mode=retry_mode)
    data = os.urandom(64 * 1024)
    proxy.inject(fault, times=2, method="PUT")
    stored = store.put_bytes("originals/ab/scan", data)
    assert stored.created and stored.sha256 == sha(data)
    assert proxy.count("PUT", fault=fault.kind) == 2 and proxy.count("PUT", fault=None) == 1
    assert versions(raw_client, store, "originals/ab/scan") == 1
    assert store.get_bytes("originals/ab/scan") == data


def test_a_lost_answer_is_retried_and_settles_on_the_object_already_written(
        proxy: FaultProxy, raw_client: Any, aws_test_env: None) -> None:
    """The store wrote the object but the answer never arrived: the retry meets If-None-Match (412) and
    the write is recognised as done, not repeated and not reported as a failure."""
    store = make_store(proxy)
    data = b"master bytes " * 1000
    proxy.inject(Fault.lost_answer(), method="PUT")
    stored = store.put_bytes("originals/cd/scan", data)
    assert stored.sha256 == sha(data) and not stored.created  # the first, unanswered PUT created it
    assert proxy.count("PUT") == 2
    assert versions(raw_client, store, "originals/cd/scan") == 1
    assert store.rehash("originals/cd/scan").sha256 == sha(data)


def test_an_answer_slower_than_the_read_timeout_is_retried(proxy: FaultProxy, raw_client: Any, aws_test_env: None) -> None:
    store = make_store(proxy, read_timeout=1.0)
    data = os.urandom(10_000)
    proxy.inject(Fault.delay(3.0), method="PUT")
    stored = store.put_bytes("derivatives/ef/slow.jpg", data)
    assert stored.sha256 == sha(data)
    assert proxy.count("PUT", fault="delay") == 1 and proxy.count("PUT", fault=None) >= 1
    assert versions(raw_client, store, "derivatives/ef/slow.jpg") == 1


def test_a_slow_store_within_the_timeout_works_without_retries(proxy: FaultProxy, aws_test_env: None) -> None:
    store = make_store(proxy, read_timeout=5.0)
    proxy.always(Fault.delay(0.3))
    data = os.urandom(20_000)
    assert store.put_bytes("k/slow", data).created
    assert store.get_bytes("k/slow") == data
    assert store.rehash("k/slow").sha256 == sha(data)
    assert store.head("k/slow").sha256 == sha(data)  # type: ignore[union-attr]
    # one HEAD + one PUT for the write, one GET per read, one HEAD: no request was repeated
    assert [(s.method, s.fault) for s in proxy.seen] == [("HEAD", "delay"), ("PUT", "delay"), ("GET", "delay"),
                                                          ("GET", "delay"), ("HEAD", "delay")]


@pytest.mark.parametrize("fault,expected", [
    (Fault.slow_down(), r"the store is overloaded; try again later \(gave up after 3 attempts\)"),
    (Fault.internal_error(), r"the store had an internal error; try again later \(gave up after 3 attempts\)"),
    (Fault.drop(), r"could not be reached"),
], ids=["503-SlowDown", "500-InternalError", "dropped"])
def test_persistent_faults_end_in_a_clear_error_with_nothing_stored(
        proxy: FaultProxy, raw_client: Any, aws_test_env: None, fault: Fault, expected: str) -> None:
    store = make_store(proxy, max_attempts=3)
    proxy.always(fault, method="PUT")
    with pytest.raises(StorageError, match=expected) as info:
        store.put_bytes("originals/12/lost", b"never stored")
    message = str(info.value)
    assert proxy.url in message and f"s3://{BUCKET}/{store.prefix}/originals/12/lost" in message
    assert proxy.count("PUT") == 3
    assert versions(raw_client, store, "originals/12/lost") == 0
    proxy.always(None)
    assert store.head("originals/12/lost") is None


def test_a_failed_upload_leaves_nothing_in_the_catalogue(proxy: FaultProxy, raw_client: Any, aws_test_env: None,
                                                           tmp_path: Path) -> None:
    """The mint flow's metadata document cannot be written: no inventory row, no batch, item still approved."""
    catalogue = Catalogue(f"sqlite:///{tmp_path / 'catalogue.sqlite3'}")
    catalogue.migrate()
    try:
        reviewer = catalogue.add_user("li", "not-a-real-hash", "reviewer")
        digest = sha(b"a scan")
        item_id, _ = catalogue.register_received(sha256=digest, file_name="scan.jpg", inbox_path="/inbox/scan.jpg",
                                                 size_bytes=6, ingest_run_id=None)
        catalogue.record_ingested(item_id, IngestedImage(
            sha256=digest, size_bytes=6, format="JPEG", width=8, height=8, mode="RGB", bits_per_sample=8,
            original_key=f"originals/{digest[:2]}/{digest}", access_key="a", thumbnail_key="t", derivation=[],
            hashes={}, technical={}, warnings=[], accession_number="MB-1", accession_number_source="sheet", title="铜镜",
            sheet_fields={"accession_number": "MB-1", "title": "铜镜"}))
        catalogue.record_decision(item_id, reviewer_id=reviewer, decision="approve")
        store = make_store(proxy, max_attempts=2)
        proxy.always(Fault.internal_error(), method="PUT")
        with pytest.raises(StorageError, match="internal error"):
            prepare_batch(catalogue, store, item_ids=[item_id], recipient="museum")
        with catalogue.read_session() as s:
            assert s.query(StoredObjectRecord).count() == 0
            assert s.query(MintBatch).count() == 0
        assert catalogue.item_status(item_id).value == "approved"
        listed = raw_client.list_object_versions(Bucket=BUCKET, Prefix=f"{store.prefix}/")
        assert listed.get("Versions", []) == []
    finally:
        catalogue.dispose()


@pytest.mark.usefixtures("prefect_server")
def test_an_object_store_outage_stops_ingest_cleanly_and_the_next_run_finishes(
        proxy: FaultProxy, raw_client: Any, aws_test_env: None, settings: Any) -> None:
    """Not the files' fault: no item is failed or quarantined, nothing half-stored is visible, the run says why."""
    from PIL import Image

    from flows.ingest import ingest_flow
    from relicflow.errors import IngestStopped
    from relicflow.settings import load_settings

    prefix = f"ingest-{uuid.uuid4().hex[:8]}"
    settings = load_settings(**{**settings.model_dump(), "storage_url": f"s3://{BUCKET}/{prefix}", "s3_endpoint_url": proxy.url,
                                "s3_max_attempts": 2, "s3_read_timeout_s": 5.0, "s3_connect_timeout_s": 2.0})
    settings.inbox.mkdir(parents=True)
    for i, colour in enumerate(("sienna", "teal", "olive")):
        Image.new("RGB", (120, 90), colour).save(settings.inbox / f"GJ-0000{i}.jpg")
    proxy.inject(Fault.slow_down(), times=1, method="PUT")  # one hiccup first: retried, not noticed
    proxy.always(Fault.internal_error(), method="PUT", path_contains="/originals/")
    with pytest.raises(IngestStopped, match="object store cannot be used") as stopped:
        ingest_flow(settings=settings, start_gate=False)
    assert proxy.url in str(stopped.value)
    catalogue = Catalogue(settings.database_url)
    try:
        assert {i.status for i in catalogue.items()} == {"received"}
        assert all(f.original_key is None for i in catalogue.items() for f in i.files)
        with catalogue.read_session() as s:
            assert s.query(StoredObjectRecord).count() == 0
        stored = [v["Key"] for v in raw_client.list_object_versions(Bucket=BUCKET, Prefix=f"{prefix}/").get("Versions", [])]
        assert [k for k in stored if "/audit-anchors/" not in k] == []  # the run's anchor of the audit chain is whole and wanted
        proxy.always(None)  # the store is back
        summary = ingest_flow(settings=settings, start_gate=False)
        assert summary["outcome"] == "completed" and summary["awaiting_review"] == 3
        assert {i.status for i in catalogue.items()} == {"awaiting_review"}
    finally:
        catalogue.dispose()
