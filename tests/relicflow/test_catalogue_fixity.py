"""The inventory of stored objects in the catalogue: registration, the order fixity checks it in, what a
check records and audits, and migration 0004's backfill from catalogues that predate it. On SQLite, or
on PostgreSQL with RELICFLOW_TEST_POSTGRES_URL (the ``settings`` fixture's database)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import func, select, text

from relicflow.catalogue import Catalogue, StoredObjectRef
from relicflow.catalogue.fixity import FixityResult
from relicflow.catalogue.migrate import alembic_config
from relicflow.catalogue.models import AuditEntry, StoredObjectRecord, utcnow
from relicflow.errors import IntegrityError
from relicflow.settings import Settings
from relicflow.storage import InvalidKey, StoredObject, derivative_key, original_key


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def catalogue(settings: Settings) -> Iterator[Catalogue]:
    c = Catalogue(settings.database_url)
    c.migrate()
    yield c
    c.dispose()


def ref(name: str, role: str = "original", *, item_id: int | None = None, known: bool = True) -> StoredObjectRef:
    digest = sha(name)
    return StoredObjectRef(key=f"objects/{name}", sha256=digest if known else None, size_bytes=len(name) if known else None,
                           role=role, item_id=item_id)


def actions(catalogue: Catalogue, prefix: str) -> list[AuditEntry]:
    return [e for e in catalogue.audit_entries() if e.action.startswith(prefix)]


def test_registration_is_idempotent_by_key(catalogue: Catalogue) -> None:
    a, b = ref("a"), ref("b", "access")
    assert catalogue.register_stored_objects([a, b]) == 2
    assert catalogue.register_stored_objects([a, b, a]) == 0
    row = catalogue.stored_object("objects/a")
    assert row is not None and (row.sha256, row.size_bytes, row.role, row.sha256_source) == (sha("a"), 1, "original", "registered")
    with catalogue.read_session() as s:
        assert s.scalar(select(func.count(StoredObjectRecord.id))) == 2
    stored = StoredObject("originals/ab/x" , 10, sha("x"), created=False)  # a re-run's put_* result registers the same
    assert StoredObjectRef.of(stored, role="original", item_id=None) == StoredObjectRef("originals/ab/x", sha("x"), 10, "original")


def test_another_hash_under_a_registered_key_is_refused_logged_and_audited(catalogue: Catalogue, caplog: pytest.LogCaptureFixture) -> None:
    catalogue.register_stored_objects([ref("a")])
    liar = StoredObjectRef(key="objects/a", sha256=sha("not a"), size_bytes=5, role="original")
    with pytest.raises(IntegrityError, match="objects/a"):
        catalogue.register_stored_objects([liar, ref("c")])
    assert catalogue.stored_object("objects/a").sha256 == sha("a")  # type: ignore[union-attr]  # the first record stays
    assert catalogue.stored_object("objects/c") is not None  # the consistent one of the same call is registered
    [entry] = actions(catalogue, "storage:inventory-conflict")
    assert entry.details == {"key": "objects/a", "registered_sha256": sha("a"), "claimed_sha256": sha("not a")}
    assert "inventory conflict: objects/a" in caplog.text
    assert catalogue.verify_audit_chain() is None


def test_registration_joins_the_callers_transaction(catalogue: Catalogue) -> None:
    with catalogue.session() as s:
        assert catalogue.register_stored_objects([ref("a")], session=s) == 1
        assert s.scalar(select(StoredObjectRecord.key).where(StoredObjectRecord.key == "objects/a")) == "objects/a"
    assert catalogue.stored_object("objects/a") is not None
    with pytest.raises(RuntimeError):
        with catalogue.session() as s:
            catalogue.register_stored_objects([ref("b")], session=s)
            raise RuntimeError("the caller's later step failed")
    assert catalogue.stored_object("objects/b") is None  # rolled back with the caller's work


def test_one_call_naming_a_key_twice(catalogue: Catalogue) -> None:
    unknown = StoredObjectRef("objects/e", None, None, "access")
    assert catalogue.register_stored_objects([unknown, ref("e", "access"), unknown]) == 1
    assert catalogue.stored_object("objects/e").sha256 == sha("e")  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="twice"):
        catalogue.register_stored_objects([ref("f"), StoredObjectRef("objects/f", sha("g"), 1, "original")])
    assert catalogue.stored_object("objects/f") is None


def test_a_hash_unknown_at_backfill_is_filled_in_by_the_writer(catalogue: Catalogue) -> None:
    catalogue.register_stored_objects([ref("d", "thumbnail", known=False)])
    assert catalogue.stored_object("objects/d").sha256 is None  # type: ignore[union-attr]
    catalogue.register_stored_objects([ref("d", "thumbnail", item_id=None)])
    row = catalogue.stored_object("objects/d")
    assert row is not None and (row.sha256, row.size_bytes, row.sha256_source) == (sha("d"), 1, "registered")


@pytest.mark.parametrize("bad,error", [
    (StoredObjectRef("../escape", None, None, "original"), InvalidKey),
    (StoredObjectRef("ok/key", "ABC", 1, "original"), ValueError),
    (StoredObjectRef("ok/key", None, None, "master"), ValueError),
])
def test_malformed_registrations_are_refused(catalogue: Catalogue, bad: StoredObjectRef, error: type[Exception]) -> None:
    with pytest.raises(error):
        catalogue.register_stored_objects([bad])
    assert catalogue.fixity_summary().total == 0


def test_objects_come_to_check_never_checked_first_then_oldest(catalogue: Catalogue) -> None:
    catalogue.register_stored_objects([ref(n) for n in "abcde"])
    start = utcnow()
    catalogue.record_fixity_results([FixityResult("objects/b", "ok", checked_at=start - timedelta(days=3)),
                                     FixityResult("objects/d", "ok", checked_at=start - timedelta(days=5)),
                                     FixityResult("objects/a", "ok", checked_at=start + timedelta(seconds=1))])
    order = [r.key for r in catalogue.stored_objects_to_check(10)]
    assert order == ["objects/c", "objects/e", "objects/d", "objects/b", "objects/a"]
    assert [r.key for r in catalogue.stored_objects_to_check(3)] == ["objects/c", "objects/e", "objects/d"]
    assert [r.key for r in catalogue.stored_objects_to_check(10, older_than=start)] == ["objects/c", "objects/e", "objects/d", "objects/b"]
    first = catalogue.stored_objects_to_check(1)[0]
    assert first == ref("c")


def test_results_are_recorded_and_changes_audited_once(catalogue: Catalogue) -> None:
    catalogue.register_stored_objects([ref("a", item_id=None), ref("b"), ref("t", "thumbnail", known=False)])
    catalogue.record_fixity_results([
        FixityResult("objects/a", "changed", "registered sha256 …; the stored bytes hash to …", sha("other"), 1),
        FixityResult("objects/b", "missing", "no object under this key"),
        FixityResult("objects/t", "ok", "adopted", sha("t"), 1, adopted_sha256=sha("t")),
        FixityResult("objects/not-registered", "ok"),
    ])
    a, t = catalogue.stored_object("objects/a"), catalogue.stored_object("objects/t")
    assert a is not None and (a.last_check, a.sha256) == ("changed", sha("a"))  # the expected hash never moves
    assert t is not None and (t.sha256, t.sha256_source, t.size_bytes, t.last_check) == (sha("t"), "store", 1, "ok")
    problems = actions(catalogue, "fixity:problem")
    assert [(e.details["key"], e.details["outcome"]) for e in problems] == [("objects/a", "changed"), ("objects/b", "missing")]
    assert problems[0].details["actual_sha256"] == sha("other")
    [adopted] = actions(catalogue, "fixity:hash-adopted")
    assert adopted.details["adopted_sha256"] == sha("t")

    # the same problems found again: recorded, not audited again; a restored object is audited as recovered
    catalogue.record_fixity_results([FixityResult("objects/a", "changed", "again"), FixityResult("objects/b", "ok", actual_size=1)])
    assert len(actions(catalogue, "fixity:problem")) == 2
    [recovered] = actions(catalogue, "fixity:recovered")
    assert recovered.details["key"] == "objects/b" and recovered.details["previous"] == "missing"
    # a problem of another kind is news
    catalogue.record_fixity_results([FixityResult("objects/a", "missing", "gone now")])
    assert [e.details["outcome"] for e in actions(catalogue, "fixity:problem")] == ["changed", "missing", "missing"]
    assert catalogue.verify_audit_chain() is None
    with pytest.raises(ValueError):
        catalogue.record_fixity_results([FixityResult("objects/a", "fine")])


def test_summary_counts_problems_and_the_last_run(catalogue: Catalogue) -> None:
    empty = catalogue.fixity_summary()
    assert (empty.total, empty.problem_count, empty.last_run_at, empty.oldest_check_at) == (0, 0, None, None)
    catalogue.register_stored_objects([ref(n) for n in "abcd"])
    checked = utcnow() - timedelta(hours=2)
    catalogue.record_fixity_results([FixityResult("objects/a", "ok", checked_at=checked),
                                     FixityResult("objects/b", "changed", "bytes differ"),
                                     FixityResult("objects/c", "unreadable", "permission denied")])
    catalogue.record_fixity_run({"checked": 3, "temporaries_removed": 1})
    summary = catalogue.fixity_summary()
    assert summary.counts == {"ok": 1, "missing": 0, "changed": 1, "unreadable": 1, "unchecked": 1}
    assert summary.total == 4 and summary.problem_count == 2
    assert sorted((p.key, p.outcome, p.detail) for p in summary.problems) == [
        ("objects/b", "changed", "bytes differ"), ("objects/c", "unreadable", "permission denied")]
    assert summary.oldest_check_at is not None and abs(summary.oldest_check_at - checked) < timedelta(seconds=1)
    assert summary.last_run == {"checked": 3, "temporaries_removed": 1} and summary.last_run_at is not None


# -- migration 0004 ---------------------------------------------------------------------------------


def test_migration_0004_backfills_the_inventory_from_existing_rows(settings: Settings) -> None:
    catalogue = Catalogue(settings.database_url)
    try:
        command.upgrade(alembic_config(catalogue.engine), "0003")  # a catalogue from before the inventory
        # rows written the way a 0003-era relicflow wrote them (raw SQL: today's models have later columns)
        processed, quarantined = sha("processed scan"), sha("truncated scan")
        access, thumb = derivative_key(processed, "access-0123456789abcdef.jpg"), derivative_key(processed, "thumbnail-fedcba9876543210.jpg")
        document = sha("metadata document")
        now = "2026-01-01 00:00:00+00:00"
        body = json.dumps({"items": [{"item_ref": "relicflow:item:1", "metadata_uri": f"file:///srv/objects/metadata/{document}.json",
                                      "metadata_sha256": document}]})
        item_id, bad_id = 1, 2
        with catalogue.engine.begin() as conn:
            for statement, params in [
                ("INSERT INTO items (id, status, required_approvals, created_at, updated_at) VALUES (1, 'batched', 1, :now, :now)", {}),
                ("INSERT INTO items (id, status, required_approvals, quarantine_code, created_at, updated_at) "
                 "VALUES (2, 'quarantined', 1, 'truncated_image', :now, :now)", {}),
                ("INSERT INTO source_files (item_id, sha256, file_name, inbox_path, size_bytes, original_key, seen_at) "
                 "VALUES (1, :p, 'a.jpg', '/in/a.jpg', 1234, :pk, :now), (1, :p, 'copy of a.jpg', '/in/b.jpg', 1234, :pk, :now), "
                 "(2, :q, 'bad.tif', '/in/bad.tif', 99, :qk, :now)", {"p": processed, "pk": original_key(processed),
                                                                       "q": quarantined, "qk": original_key(quarantined)}),
                ("INSERT INTO images (item_id, version, sha256, size_bytes, format, width, height, mode, bits_per_sample, "
                 "original_key, access_key, thumbnail_key, derivation, created_at) "
                 "VALUES (1, 1, :p, 1234, 'JPEG', 8, 8, 'RGB', 8, :pk, :a, :t, '[]', :now)",
                 {"p": processed, "pk": original_key(processed), "a": access, "t": thumb}),
                ("INSERT INTO mint_batches (id, batch_ref, idempotency_key, status, request_body, request_sha256, attempts, created_at) "
                 "VALUES (1, 'rf-1', 'k-1', 'pending', :body, :z, 0, :now)", {"body": body, "z": "0" * 64}),
                ("INSERT INTO mint_batch_items (batch_id, item_id) VALUES (1, 1)", {}),
            ]:
                conn.execute(text(statement), {"now": now, **params})

        catalogue.migrate()
        with catalogue.read_session() as s:
            rows = {r.key: (r.sha256, r.sha256_source, r.size_bytes, r.role, r.item_id, r.last_check)
                    for r in s.scalars(select(StoredObjectRecord))}
        assert rows == {
            original_key(processed): (processed, "catalogue", 1234, "original", item_id, None),
            original_key(quarantined): (quarantined, "catalogue", 99, "original", bad_id, None),
            access: (None, None, None, "access", item_id, None),
            thumb: (None, None, None, "thumbnail", item_id, None),
            f"metadata/{document}.json": (document, "catalogue", None, "metadata", item_id, None),
        }
        assert [r.key for r in catalogue.stored_objects_to_check(10)][:1] == [original_key(processed)]
        command.downgrade(alembic_config(catalogue.engine), "0003")
        catalogue.migrate()  # down and up again: the backfill is repeatable
        assert catalogue.fixity_summary().total == 5
    finally:
        catalogue.dispose()
