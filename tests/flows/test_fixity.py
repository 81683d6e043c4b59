"""The fixity flow on a real Prefect server, a real SQLite catalogue and real stores (a directory, and
moto's S3 server on loopback): one original corrupted and one access copy deleted behind the store's
back are reported by the flow (and its Prefect artifact), by `relicflow fixity` and on the admin page;
everything else is reported intact; a stale temporary file is removed and a fresh one kept."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import Result
from typer.testing import CliRunner

from flows.fixity import fixity_flow
from relicflow.catalogue import Catalogue, StoredObjectRef
from relicflow.cli import app
from relicflow.errors import StorageError
from relicflow.passwords import hash_password
from relicflow.settings import Settings, load_settings
from relicflow.storage import LocalStore, ObjectStore, S3Store, derivative_key, open_store, original_key
from review_ui import create_review_app
from review_world import PASSWORD, form_token

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.usefixtures("prefect_server")

BUCKET = "relicflow-fixity"
CLI_ENV = {key: None for key in ("PREFECT_HOME", "PREFECT_API_URL", "RELICFLOW_DATA_DIR", "RELICFLOW_LOCALE")}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class StoredWorld:
    settings: Settings
    catalogue: Catalogue
    store: ObjectStore
    keys: dict[str, str]  # the key of each stored object, by name
    bodies: dict[str, bytes]  # what was stored, by name: the "backup" a technician restores from
    raw_client: Any = None

    def flip_a_byte(self, key: str) -> None:
        """Silent corruption: the bytes change, the store's own record of their hash does not."""
        if isinstance(self.store, LocalStore):
            path = self.store.local_path(key)
            assert path is not None
            path.chmod(0o644)  # stored objects are read-only files
            with open(path, "r+b") as f:
                f.seek(100)
                byte = f.read(1)
                f.seek(100)
                f.write(bytes([byte[0] ^ 0x01]))
            return
        assert isinstance(self.store, S3Store)
        name = f"{self.store.prefix}/{key}"
        head = self.raw_client.head_object(Bucket=BUCKET, Key=name)
        data = bytearray(self.raw_client.get_object(Bucket=BUCKET, Key=name)["Body"].read())
        data[100] ^= 0x01
        self.raw_client.put_object(Bucket=BUCKET, Key=name, Body=bytes(data), Metadata=head["Metadata"])

    def delete(self, key: str) -> None:
        if isinstance(self.store, LocalStore):
            path = self.store.local_path(key)
            assert path is not None
            path.unlink()
            return
        assert isinstance(self.store, S3Store)
        self.raw_client.delete_object(Bucket=BUCKET, Key=f"{self.store.prefix}/{key}")

    def restore(self, name: str) -> None:
        """What a technician does with a backup: take away what is there, store the original bytes again."""
        key = self.keys[name]
        if isinstance(self.store, LocalStore):
            (self.store.root / key).unlink(missing_ok=True)
        else:
            self.raw_client.delete_object(Bucket=BUCKET, Key=f"{self.store.prefix}/{key}")  # type: ignore[union-attr]
        assert self.store.put_bytes(key, self.bodies[name]).created

    def cli(self, *args: str, lang: str | None = "en") -> Result:
        argv = ["--data-dir", str(self.settings.data_dir), *(["--lang", lang] if lang else []), "fixity", *args]
        return CliRunner().invoke(app, argv, catch_exceptions=False, env=CLI_ENV)


def contents() -> dict[str, bytes]:
    """Three items' worth of objects: originals, access copies, thumbnails, and one metadata document."""
    out: dict[str, bytes] = {}
    for n in range(3):
        original = os.urandom(40_000 + n)
        out[f"original-{n}"] = original
        out[f"access-{n}"] = b"\xff\xd8\xff" + os.urandom(8_000 + n)
        out[f"thumbnail-{n}"] = b"\xff\xd8\xff" + os.urandom(900 + n)
    out["metadata"] = json.dumps({"item_ref": "relicflow:item:1", "name": "青铜鼎"}, ensure_ascii=False).encode()
    return out


def key_for(name: str, data: bytes, originals: dict[str, bytes]) -> str:
    kind, _, n = name.partition("-")
    if kind == "original":
        return original_key(sha(data))
    if kind == "metadata":
        return f"metadata/{sha(data)}.json"
    return derivative_key(sha(originals[f"original-{n}"]), f"{kind}-{sha(data)[:16]}.jpg")


@pytest.fixture(params=["local", "s3"])
def world(request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[StoredWorld]:
    monkeypatch.setenv("RELICFLOW_PREFECT_PORT", str(free_port()))  # never a developer's `relicflow serve`
    monkeypatch.setenv("COLUMNS", "250")
    for key in ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_LOGGING_LEVEL", "RELICFLOW_DATA_DIR", "RELICFLOW_LOCALE"):
        monkeypatch.setenv(key, "x")  # restored (or removed) after the test, whatever the CLI sets
        monkeypatch.delenv(key)
    raw_client = None
    if request.param == "s3":
        endpoint = request.getfixturevalue("moto_s3_endpoint")
        request.getfixturevalue("aws_test_env")
        raw_client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        if BUCKET not in [b["Name"] for b in raw_client.list_buckets().get("Buckets", [])]:
            raw_client.create_bucket(Bucket=BUCKET)
        monkeypatch.setenv("RELICFLOW_STORAGE_URL", f"s3://{BUCKET}/run-{uuid.uuid4().hex[:8]}")
        monkeypatch.setenv("RELICFLOW_S3_ENDPOINT_URL", endpoint)
        settings = load_settings(data_dir=settings.data_dir, database_url=settings.database_url)
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    store = open_store(settings)
    data = contents()
    originals = {k: v for k, v in data.items() if k.startswith("original-")}
    keys: dict[str, str] = {}
    refs = []
    for name, body in data.items():
        stored = store.put_bytes(key_for(name, body, originals), body)
        keys[name] = stored.key
        item_id = None
        if name.startswith("original-"):
            item_id, _ = catalogue.register_received(sha256=stored.sha256, file_name=f"{name}.tif", inbox_path=f"/in/{name}.tif",
                                                     size_bytes=stored.size, ingest_run_id=None)
        refs.append(StoredObjectRef.of(stored, role=name.partition("-")[0], item_id=item_id))
    # one thumbnail as migration 0004 backfills derivatives: no hash known
    refs = [StoredObjectRef(r.key, None, None, r.role) if r.key == keys["thumbnail-2"] else r for r in refs]
    catalogue.register_stored_objects(refs)
    yield StoredWorld(settings=settings, catalogue=catalogue, store=store, keys=keys, bodies=data, raw_client=raw_client)
    catalogue.dispose()


def age(path: Path, days: float) -> None:
    stamp = (datetime.now(timezone.utc) - timedelta(days=days)).timestamp()
    os.utime(path, (stamp, stamp))


def add_temporaries(world: StoredWorld) -> None:
    """A stale leftover of an interrupted write and a fresh one (a write that may still be going)."""
    if isinstance(world.store, LocalStore):
        folder = (world.store.root / world.keys["original-0"]).parent
        stale, fresh = folder / ".interrupted.k3j4h5g6.tmp", folder / ".in-progress.a1b2c3d4.tmp"
        stale.write_bytes(b"half a master")
        fresh.write_bytes(b"a write still going on")
        age(stale, 2)
        return
    assert isinstance(world.store, S3Store)
    world.raw_client.create_multipart_upload(Bucket=BUCKET, Key=f"{world.store.prefix}/originals/00/interrupted")


def artifact_table(flow_run_id: Any) -> list[dict[str, str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["fixity-report"]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    data = artifact.data
    return json.loads(data) if isinstance(data, str) else data  # type: ignore[return-value]


def admin_page(world: StoredWorld, lang: str = "en", *, as_user: str = "adam") -> tuple[int, str]:
    if world.catalogue.user_by_name("adam") is None:
        hashed = hash_password(PASSWORD)
        world.catalogue.add_user("adam", hashed, "admin")
        world.catalogue.add_user("alice", hashed, "reviewer")
    client = TestClient(create_review_app(world.settings, world.catalogue, world.store), follow_redirects=False)
    login = client.get("/login")
    r = client.post("/login", data={"username": as_user, "password": PASSWORD, "csrf_token": form_token(login.text)})
    assert r.status_code == 303
    page = client.get(f"/admin/fixity?lang={lang}")
    return page.status_code, page.text


def test_corrupted_and_deleted_objects_are_reported_everywhere_and_the_rest_is_intact(world: StoredWorld) -> None:
    corrupted, deleted = world.keys["original-0"], world.keys["access-1"]
    world.flip_a_byte(corrupted)
    world.delete(deleted)
    add_temporaries(world)
    total = len(world.keys)

    state = fixity_flow(settings=world.settings, return_state=True)
    result = state.result()
    assert (result["checked"], result["ok"], result["missing"], result["changed"], result["unreadable"]) == (total, total - 2, 1, 1, 0)
    assert result["hash_adopted"] == 1  # the backfilled thumbnail: the store's own record was taken, and said so
    assert result["temporaries_removed"] == 1
    if isinstance(world.store, LocalStore):
        assert result["temporaries_kept"] == 1
        assert [p.name for p in world.store.root.rglob("*.tmp")] == [".in-progress.a1b2c3d4.tmp"]
    assert {(p["key"], p["outcome"]) for p in result["problems"]} == {(corrupted, "changed"), (deleted, "missing")}
    changed = next(p for p in result["problems"] if p["outcome"] == "changed")
    assert sha(b"") not in changed["detail"] and "the stored bytes hash to" in changed["detail"]
    assert result["inventory"] == {"ok": total - 2, "missing": 1, "changed": 1, "unreadable": 0, "unchecked": 0}

    table = artifact_table(state.state_details.flow_run_id)
    assert {(row["key"], row["outcome"]) for row in table} == {(corrupted, "changed"), (deleted, "missing")}
    audit = world.catalogue.audit_entries()
    assert sorted((e.details["key"], e.details["outcome"]) for e in audit if e.action == "fixity:problem") == sorted(
        [(corrupted, "changed"), (deleted, "missing")])
    assert [e.details["key"] for e in audit if e.action == "fixity:hash-adopted"] == [world.keys["thumbnail-2"]]
    assert any(e.action == "storage:temporaries-removed" for e in audit)
    assert world.catalogue.stored_object(world.keys["thumbnail-2"]).sha256_source == "store"  # type: ignore[union-attr]

    # the CLI runs the flow again: same findings, exit 1, nothing audited twice
    text = world.cli()
    assert text.exit_code == 1, text.output
    flat = " ".join(text.output.split())
    assert corrupted in flat and deleted in flat and "changed" in flat and "missing" in flat
    assert f"{total} stored objects checked ({total - 2} intact, 1 missing, 1 changed, 0 unreadable)" in flat
    zh = world.cli(lang=None)
    assert zh.exit_code == 1 and "内容已改变" in zh.output and "缺失" in zh.output and "原件" in zh.output
    as_json = world.cli("--json")
    assert as_json.exit_code == 1
    assert {(p["key"], p["outcome"]) for p in json.loads(as_json.stdout)["problems"]} == {(corrupted, "changed"), (deleted, "missing")}
    assert len([e for e in world.catalogue.audit_entries() if e.action == "fixity:problem"]) == 2

    # the admin page, for administrators only
    status, page = admin_page(world)
    assert status == 200
    assert corrupted in page and deleted in page and "Last run:" in page
    assert page.count('<tr data-outcome="changed">') == 1 and page.count('<tr data-outcome="missing">') == 1
    assert f'data-outcome="ok">intact <strong>{total - 2}</strong>' in page
    status, page = admin_page(world, "zh-CN")
    assert status == 200 and "内容已改变" in page and "存储完整性检查" in page
    assert admin_page(world, as_user="alice")[0] == 403

    # restored from a backup: the next run finds everything intact and says the two recovered
    world.restore("original-0")
    world.restore("access-1")
    fixed = world.cli()
    assert fixed.exit_code == 0, fixed.output
    assert "Every checked stored object is intact" in fixed.output
    assert sorted(e.details["key"] for e in world.catalogue.audit_entries() if e.action == "fixity:recovered") == sorted([corrupted, deleted])


def test_runs_of_a_limited_size_cover_the_store_in_turn(settings: Settings) -> None:
    settings = settings.model_copy(update={"fixity_workers": 1})  # one at a time: check times follow key order
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    store = open_store(settings)
    keys = [f"other/{n}" for n in range(5)]
    catalogue.register_stored_objects([StoredObjectRef.of(store.put_bytes(key, os.urandom(50)), role="other") for key in keys])
    try:
        checked_by_run = []
        for _ in range(3):
            before = {k: catalogue.stored_object(k).last_checked_at for k in keys}  # type: ignore[union-attr]
            assert fixity_flow(settings=settings, limit=2)["checked"] == 2
            after = {k: catalogue.stored_object(k).last_checked_at for k in keys}  # type: ignore[union-attr]
            checked_by_run.append(sorted(k for k in keys if after[k] != before[k]))
        assert checked_by_run == [["other/0", "other/1"], ["other/2", "other/3"], ["other/0", "other/4"]]
    finally:
        catalogue.dispose()


@pytest.mark.slow  # an HTTP proxy and botocore's retries
def test_a_store_that_stops_answering_stops_the_run_and_marks_nothing(settings: Settings, moto_s3_endpoint: str,
                                                                      aws_test_env: None) -> None:
    from fault_proxy import Fault, FaultProxy

    raw_client = boto3.client("s3", endpoint_url=moto_s3_endpoint, region_name="us-east-1")
    if BUCKET not in [b["Name"] for b in raw_client.list_buckets().get("Buckets", [])]:
        raw_client.create_bucket(Bucket=BUCKET)
    with FaultProxy(moto_s3_endpoint) as proxy:
        s3 = settings.model_copy(update={"storage_url": f"s3://{BUCKET}/outage-{uuid.uuid4().hex[:8]}",
                                         "s3_endpoint_url": proxy.url, "s3_max_attempts": 2})
        catalogue = Catalogue.from_settings(s3)
        catalogue.migrate()
        store = open_store(s3)
        catalogue.register_stored_objects([StoredObjectRef.of(store.put_bytes(f"originals/0{n}/x{n}", os.urandom(100)), role="original")
                                           for n in range(12)])
        proxy.always(Fault.drop(), method="GET", path_contains="/originals/")  # the listing of uploads still answers
        try:
            with pytest.raises(StorageError, match="store itself looks unreachable"):
                fixity_flow(settings=s3)
            summary = catalogue.fixity_summary()
            assert summary.counts["unchecked"] == 12 and summary.problem_count == 0
            assert "looks unreachable" in summary.last_run["error"] and proxy.url in summary.last_run["error"]
            assert not [e for e in catalogue.audit_entries() if e.action == "fixity:problem"]
            proxy.always(None)
            assert fixity_flow(settings=s3)["ok"] == 12
        finally:
            catalogue.dispose()


def test_serve_schedules_fixity_at_the_configured_interval(settings: Settings) -> None:
    from relicflow.serve import deployments

    registered = {d.name: d for d in deployments(settings.model_copy(update={"fixity_interval_s": 3600}))}
    assert sorted(registered) == ["fixity", "ingest", "mint", "review-gate"]
    [schedule] = registered["fixity"].schedules
    assert schedule.schedule.interval == timedelta(hours=1)
    assert registered["fixity"].entrypoint == "flows/fixity.py:fixity_flow"
    import yaml  # production deployments (prefect.yaml) schedule the same flow at the default interval

    production = {d["name"]: d for d in yaml.safe_load((Path(__file__).parents[2] / "prefect.yaml").read_text())["deployments"]}
    assert production["fixity"]["entrypoint"] == "flows/fixity.py:fixity_flow"
    assert production["fixity"]["schedules"] == [{"interval": Settings.model_fields["fixity_interval_s"].default}]


def test_the_mint_flow_registers_the_metadata_documents_it_writes(settings: Settings) -> None:
    from flows.mint import prepare_batch
    from relicflow.catalogue.ingested import IngestedImage

    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    store = open_store(settings)
    try:
        reviewer = catalogue.add_user("li", "not-a-real-hash", "reviewer")
        digest = sha(b"a scan")
        item_id, _ = catalogue.register_received(sha256=digest, file_name="scan.jpg", inbox_path="/in/scan.jpg", size_bytes=6,
                                                 ingest_run_id=None)
        catalogue.record_ingested(item_id, IngestedImage(
            sha256=digest, size_bytes=6, format="JPEG", width=8, height=8, mode="RGB", bits_per_sample=8,
            original_key=original_key(digest), access_key="a", thumbnail_key="t", derivation=[], hashes={}, technical={},
            warnings=[], accession_number="MB-1", accession_number_source="sheet", title="铜镜",
            sheet_fields={"accession_number": "MB-1", "title": "铜镜"}))
        catalogue.record_decision(item_id, reviewer_id=reviewer, decision="approve")
        batch = catalogue.mint_batch(prepare_batch(catalogue, store, item_ids=[item_id], recipient="museum"))
        uri = batch.request_body["items"][0]["metadata_uri"]
        key = uri[uri.index("metadata/"):]
        row = catalogue.stored_object(key)
        assert row is not None and (row.role, row.item_id, row.sha256_source) == ("metadata", item_id, "registered")
        assert row.sha256 == batch.request_body["items"][0]["metadata_sha256"] == store.rehash(key).sha256
        assert row.size_bytes == store.rehash(key).size
    finally:
        catalogue.dispose()
