"""One object's fixity check against a real LocalStore: what each outcome means and when the store's own
record of a hash is (and is not) taken; and the rule that tells a store outage from unreadable objects."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from relicflow.catalogue import StoredObjectRef
from relicflow.catalogue.fixity import FixityResult
from relicflow.storage import LocalStore, derivative_key, original_key
from tasks.fixity import check_object, check_objects, hash_named_by_key, split_at_outage


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "objects")


def overwrite(store: LocalStore, key: str, data: bytes, *, sidecar: bool = False) -> None:
    """Change the file (and, with ``sidecar``, the store's record of its hash too) behind the store's back."""
    path = store.local_path(key)
    assert path is not None
    path.chmod(0o644)
    path.write_bytes(data)
    if sidecar:
        record = path.with_name(path.name + ".sha256")
        record.chmod(0o644)
        record.write_text(f"{sha(data)}  {path.name}\n")


def test_keys_that_name_their_content() -> None:
    digest = sha(b"master")
    assert hash_named_by_key(original_key(digest)) == digest
    assert hash_named_by_key(f"metadata/{digest}.json") == digest
    assert hash_named_by_key(derivative_key(digest, "access-0123456789abcdef.jpg")) == "0123456789abcdef"
    assert hash_named_by_key(derivative_key(digest, "access.jpg")) is None
    assert hash_named_by_key("packages/batch-1.zip") is None


def test_intact_changed_and_missing(store: LocalStore) -> None:
    data = os.urandom(5000)
    key = original_key(sha(data))
    stored = store.put_bytes(key, data)
    ref = StoredObjectRef.of(stored, role="original")
    ok = check_object(store, ref)
    assert (ok.outcome, ok.detail, ok.actual_sha256, ok.actual_size, ok.adopted_sha256) == ("ok", "", sha(data), 5000, None)
    overwrite(store, key, data[:-1] + bytes([data[-1] ^ 1]))
    changed = check_object(store, ref)
    assert changed.outcome == "changed" and changed.detail.startswith(f"registered sha256 {sha(data)}; the stored bytes hash to")
    assert changed.adopted_sha256 is None
    store.local_path(key).unlink()  # type: ignore[union-attr]
    assert check_object(store, ref).outcome == "missing"


def test_a_file_replaced_together_with_its_recorded_hash_is_still_caught(store: LocalStore) -> None:
    """Both the bytes and the sidecar changed, and the inventory never knew the hash (a backfilled
    derivative): the hash prefix in the key still tells."""
    original = sha(b"master")
    jpeg = b"\xff\xd8\xff" + os.urandom(2000)
    key = derivative_key(original, f"access-{sha(jpeg)[:16]}.jpg")
    store.put_bytes(key, jpeg)
    overwrite(store, key, b"\xff\xd8\xff another picture", sidecar=True)
    result = check_object(store, StoredObjectRef(key, None, None, "access"))
    assert result.outcome == "changed" and result.detail.startswith(f"the key names content {sha(jpeg)[:16]}")
    assert result.adopted_sha256 is None


def test_an_unknown_hash_is_taken_from_the_store_only_when_the_bytes_agree(store: LocalStore) -> None:
    data = b"thumbnail bytes"
    key = derivative_key(sha(b"master"), "thumbnail.jpg")
    store.put_bytes(key, data)
    ref = StoredObjectRef(key, None, None, "thumbnail")
    adopted = check_object(store, ref)
    assert (adopted.outcome, adopted.adopted_sha256, adopted.actual_size) == ("ok", sha(data), len(data))
    assert "store's own record" in adopted.detail
    overwrite(store, key, b"thumbnail bytEs")  # the sidecar still holds the old hash
    refused = check_object(store, ref)
    assert refused.outcome == "changed" and refused.adopted_sha256 is None
    assert refused.detail.startswith(f"the store's own record (none was registered) says sha256 {sha(data)}")


def test_something_unreadable_is_reported_as_such(store: LocalStore) -> None:
    (store.root / "originals" / "ee" / "odd").mkdir(parents=True)  # a directory where a file should be
    result = check_object(store, StoredObjectRef("originals/ee/odd", sha(b"x"), 1, "original"))
    assert result.outcome == "unreadable" and "originals/ee/odd" in result.detail


def test_checks_in_parallel_keep_the_order(store: LocalStore) -> None:
    refs = [StoredObjectRef.of(store.put_bytes(f"k/{n}", os.urandom(100 + n)), role="other") for n in range(12)]
    refs.insert(5, StoredObjectRef("k/gone", sha(b""), 0, "other"))
    results = check_objects(store, refs, workers=4)
    assert [r.key for r in results] == [r.key for r in refs]
    assert [r.outcome for r in results] == ["ok"] * 5 + ["missing"] + ["ok"] * 7


def result(outcome: str, n: int = 0) -> FixityResult:
    return FixityResult(f"k/{n}", outcome, f"detail {n}")


def test_a_run_of_unreadable_objects_is_an_outage_not_a_finding() -> None:
    few = [result("ok", 0), result("unreadable", 1), result("unreadable", 2), result("missing", 3)]
    assert split_at_outage(few, streak=3) == (few, None)
    many = [result("ok", 0), result("unreadable", 1), result("ok", 2)] + [result("unreadable", n) for n in range(3, 6)] + [result("ok", 6)]
    recorded, outage = split_at_outage(many, streak=3)
    assert [r.key for r in recorded] == ["k/0", "k/1", "k/2"] and outage == "detail 5"
