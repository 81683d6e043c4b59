"""The catalogue, the system of record: migrations, the item's life, content addressing, the audit
chain, review decisions and mint batches. Every test runs on a real, migrated SQLite file in tmp_path;
items are built through the catalogue's own ingest methods, the way the ingest flow builds them."""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, func, inspect, select, text

from catalogue_template import copy_migrated

from relicflow.catalogue import Catalogue, ItemStatus
from relicflow.catalogue.ingested import IngestedImage
from relicflow.catalogue.migrate import alembic_config, current_revision
from relicflow.catalogue.search_index import is_search_index_object
from relicflow.catalogue.models import (
    ALLOWED_TRANSITIONS,
    REOPEN_TRANSITIONS,
    AuditEntry,
    Base,
    Item,
    MintBatch,
    MintBatchItem,
    MintReceipt,
    ReviewDecision,
    StatusTransition,
)
from relicflow.errors import CatalogueError, IllegalTransition, ReviewError

HEAD = "0015"


# -- a small world: a migrated catalogue, users, and an item builder ---------------------------------


@dataclass
class World:
    catalogue: Catalogue
    db_path: Path
    users: dict[str, int]
    _n: itertools.count = field(default_factory=lambda: itertools.count(1))

    def run(self) -> int:
        return self.catalogue.start_ingest_run(inbox="/inbox", sheet=None, flow_run_id=None)

    def received(self, run_id: int | None = None, *, name: str | None = None) -> tuple[int, str]:
        n = next(self._n)
        sha = hashlib.sha256(f"scan {n}".encode()).hexdigest()
        item_id, created = self.catalogue.register_received(sha256=sha, file_name=name or f"scan_{n}.jpg",
                                                            inbox_path=f"/inbox/scan_{n}.jpg", size_bytes=1000 + n,
                                                            ingest_run_id=run_id)
        assert created
        return item_id, sha

    def ingested(self, sha: str, *, required_approvals: int = 1, grade: str | None = "三级") -> IngestedImage:
        return IngestedImage(
            sha256=sha, size_bytes=1234, format="JPEG", width=320, height=240, mode="RGB", bits_per_sample=8,
            original_key=f"originals/{sha[:2]}/{sha}", access_key=f"derivatives/{sha[:2]}/{sha}/access.jpg",
            thumbnail_key=f"derivatives/{sha[:2]}/{sha}/thumbnail.jpg", derivation=[{"op": "resize", "long_side": 240}],
            hashes={"phash": sha[:16]}, technical={"format": "JPEG", "width": 320, "height": 240}, warnings=[],
            accession_number=f"MB-{sha[:6]}", accession_number_source="sheet", title="青花缠枝莲纹梅瓶", grade=grade,
            sheet_fields={"accession_number": f"MB-{sha[:6]}", "title": "青花缠枝莲纹梅瓶", "grade": grade},
            required_approvals=required_approvals,
        )

    def awaiting(self, run_id: int | None = None, *, required_approvals: int = 1) -> int:
        item_id, sha = self.received(run_id)
        self.catalogue.record_ingested(item_id, self.ingested(sha, required_approvals=required_approvals))
        return item_id

    def quarantined(self, run_id: int | None = None) -> int:
        item_id, _ = self.received(run_id)
        self.catalogue.quarantine(item_id, code="truncated_image", message_en="The file ends early.", message_zh="文件不完整。")
        return item_id

    def decided(self, decision: str, run_id: int | None = None) -> int:
        item_id = self.awaiting(run_id)
        self.catalogue.record_decision(item_id, reviewer_id=self.users["alice"], decision=decision,
                                       reason="" if decision == "approve" else "图像模糊")
        return item_id

    def batched(self) -> tuple[int, int]:
        item_id = self.decided("approve")
        batch_id = self.batch([item_id])
        return item_id, batch_id

    def batch(self, item_ids: list[int], ref: str | None = None) -> int:
        ref = ref or f"rf-test-{next(self._n)}"
        return self.catalogue.create_mint_batch(item_ids=item_ids, batch_ref=ref, idempotency_key=f"key-{ref}",
                                                request_body={"batch_ref": ref, "items": item_ids}, request_sha256="0" * 64)

    def minted(self) -> int:
        item_id, batch_id = self.batched()
        self.catalogue.record_mint_receipt(batch_id, chain="test-chain", tokens=[(item_id, f"tok-{item_id}", "0xabc")], raw={})
        return item_id

    def in_state(self, state: ItemStatus) -> int:
        return {
            ItemStatus.received: lambda: self.received()[0],
            ItemStatus.quarantined: self.quarantined,
            ItemStatus.awaiting_review: self.awaiting,
            ItemStatus.approved: lambda: self.decided("approve"),
            ItemStatus.rejected: lambda: self.decided("reject"),
            ItemStatus.sent_back: lambda: self.decided("send_back"),
            ItemStatus.batched: lambda: self.batched()[0],
            ItemStatus.minted: self.minted,
        }[state]()

    # what the database holds, read independently of the methods under test
    def transitions(self, item_id: int) -> list[tuple[str | None, str, str]]:
        with self.catalogue.session() as s:
            rows = s.scalars(select(StatusTransition).where(StatusTransition.item_id == item_id).order_by(StatusTransition.id))
            return [(r.from_status, r.to_status, r.reason) for r in rows]

    def count(self, model: type[Base]) -> int:
        with self.catalogue.session() as s:
            return s.scalar(select(func.count()).select_from(model)) or 0

    def snapshot(self, item_id: int) -> tuple[object, ...]:
        """Everything a refused operation must leave untouched."""
        item = self.catalogue.item(item_id)
        assert item is not None
        return (item.status, item.quarantine_code, len(item.images), len(item.decisions), len(self.transitions(item_id)),
                self.count(AuditEntry), self.count(MintBatch), self.count(MintReceipt))


@pytest.fixture
def world(tmp_path: Path, migrated_template: Path) -> Iterator[World]:
    db_path = tmp_path / "catalogue.sqlite3"
    copy_migrated(migrated_template, db_path)
    catalogue = Catalogue(f"sqlite:///{db_path}")
    catalogue.migrate()  # at head already: a no-op, as at every start of a real installation
    users = {name: catalogue.add_user(name, "not-a-real-hash", role)
             for name, role in {"alice": "reviewer", "bob": "senior_reviewer", "dora": "digitiser", "adam": "admin"}.items()}
    yield World(catalogue=catalogue, db_path=db_path, users=users)
    catalogue.dispose()


# -- migrations -----------------------------------------------------------------------------------


def test_migrate_brings_a_new_file_to_head_and_is_harmless_to_repeat(tmp_path: Path) -> None:
    db_path = tmp_path / "sub" / "new.sqlite3"
    catalogue = Catalogue(f"sqlite:///{db_path}")
    try:
        assert current_revision(catalogue.engine) is None
        catalogue.migrate()
        assert db_path.is_file()
        head = ScriptDirectory.from_config(alembic_config(catalogue.engine)).get_current_head()
        assert head == HEAD
        assert current_revision(catalogue.engine) == HEAD
        tables = set(inspect(catalogue.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables

        user_id = catalogue.add_user("alice", "h", "reviewer")
        catalogue.migrate()
        assert current_revision(catalogue.engine) == HEAD
        assert catalogue.usernames() == {user_id: "alice"}  # the second run kept the data
        assert catalogue.verify_audit_chain() is None
    finally:
        catalogue.dispose()


def test_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    catalogue = Catalogue(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    catalogue.migrate()
    try:
        with catalogue.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True, "compare_server_default": True,
                "include_name": lambda name, type_, parents: not is_search_index_object(name)})
            assert compare_metadata(context, Base.metadata) == []

            # the comparison is sensitive: a model with one more column would be reported
            drifted = MetaData(naming_convention=Base.metadata.naming_convention)
            for table in Base.metadata.tables.values():
                table.to_metadata(drifted)
            drifted.tables["items"].append_column(Column("shelf_mark", Integer))
            diff = compare_metadata(context, drifted)
            assert [d[0] for d in diff] == ["add_column"] and diff[0][3].name == "shelf_mark"
    finally:
        catalogue.dispose()


# -- the item's life ------------------------------------------------------------------------------


ILLEGAL_PAIRS = [(a, b) for a in ItemStatus for b in ItemStatus if b not in ALLOWED_TRANSITIONS[a]]
LEGAL_PAIRS = [(a, b) for a in ItemStatus for b in ALLOWED_TRANSITIONS[a]]


def test_transition_table_is_the_designed_life() -> None:
    """design.md's diagram; a change to the table must be a deliberate change to this test too."""
    S = ItemStatus
    assert set(LEGAL_PAIRS) == {
        (S.received, S.quarantined), (S.received, S.processed),
        (S.processed, S.awaiting_review), (S.processed, S.quarantined),
        (S.awaiting_review, S.approved), (S.awaiting_review, S.rejected), (S.awaiting_review, S.sent_back),
        (S.sent_back, S.resubmitted), (S.resubmitted, S.awaiting_review),
        (S.approved, S.batched), (S.batched, S.minted),
        # a batch the issuer will never mint as sent: its items go back (mint recovery, operator release)
        (S.batched, S.approved), (S.batched, S.rejected),
        # ingest's own errors are retried; stale quarantines step aside for the file that replaced them
        (S.received, S.failed), (S.failed, S.received), (S.quarantined, S.received),
        (S.failed, S.superseded), (S.quarantined, S.superseded),
        # a scan whose photograph joined the object it shows steps aside for that object
        (S.received, S.superseded),
        # an administrator's reopen of a mistaken decision (REOPEN_TRANSITIONS: refused unless it is one)
        (S.rejected, S.awaiting_review), (S.sent_back, S.awaiting_review), (S.approved, S.awaiting_review),
    }
    assert set(ALLOWED_TRANSITIONS) == set(ItemStatus)


def _force_transition(world: World, item_id: int, start: ItemStatus, to: ItemStatus) -> None:
    with sqlite3.connect(world.db_path) as raw:
        raw.execute("UPDATE items SET status = ? WHERE id = ?", (start.value, item_id))
    raw.close()
    with world.catalogue.session() as s:
        world.catalogue._transition(s, s.get_one(Item, item_id), to, actor="test",
                                    details={"reopen": True} if (start, to) in REOPEN_TRANSITIONS else None)


@pytest.mark.parametrize(("start", "to"), sorted(REOPEN_TRANSITIONS), ids=lambda s: s.value)
def test_reopen_transitions_are_refused_unless_made_as_a_reopen(world: World, start: ItemStatus, to: ItemStatus) -> None:
    """rejected/sent_back/approved → awaiting_review exist only for an administrator's reopen."""
    item_id, _ = world.received()
    with sqlite3.connect(world.db_path) as raw:
        raw.execute("UPDATE items SET status = ? WHERE id = ?", (start.value, item_id))
    raw.close()
    before = world.count(AuditEntry)
    with pytest.raises(IllegalTransition), world.catalogue.session() as s:
        world.catalogue._transition(s, s.get_one(Item, item_id), to, actor="test")
    assert world.catalogue.item_status(item_id) is start and world.count(AuditEntry) == before


@pytest.mark.parametrize(("start", "to"), ILLEGAL_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in ILLEGAL_PAIRS])
def test_every_pair_outside_the_table_is_refused_at_the_single_choke_point(world: World, start: ItemStatus, to: ItemStatus) -> None:
    """Processed and resubmitted cannot be reached as resting states through the public API, so the table
    itself is checked here for every pair; the public operations are checked below."""
    item_id, _ = world.received()
    before = (len(world.transitions(item_id)), world.count(AuditEntry))
    with pytest.raises(IllegalTransition) as info:
        _force_transition(world, item_id, start, to)
    assert (info.value.from_status, info.value.to_status) == (start.value, to.value)
    assert world.catalogue.item_status(item_id) is start
    assert (len(world.transitions(item_id)), world.count(AuditEntry)) == before


@pytest.mark.parametrize(("start", "to"), LEGAL_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in LEGAL_PAIRS])
def test_every_allowed_transition_writes_a_row_and_an_audit_entry(world: World, start: ItemStatus, to: ItemStatus) -> None:
    item_id, _ = world.received()
    _force_transition(world, item_id, start, to)
    assert world.catalogue.item_status(item_id) is to
    assert world.transitions(item_id)[-1][:2] == (start.value, to.value)
    last = world.catalogue.audit_entries(item_id=item_id)[-1]
    assert (last.action, last.details["from"], last.actor) == (f"status:{to.value}", start.value, "test")
    assert world.catalogue.verify_audit_chain() is None


RESTING = [ItemStatus.received, ItemStatus.quarantined, ItemStatus.awaiting_review, ItemStatus.approved,
           ItemStatus.rejected, ItemStatus.sent_back, ItemStatus.batched, ItemStatus.minted]


@pytest.mark.parametrize("state", RESTING, ids=lambda s: s.value)
def test_public_operations_refuse_what_the_life_forbids(world: World, state: ItemStatus) -> None:
    """From every state an item can rest in, each operation either moves it as the table allows or is
    refused with nothing written (no status change, no transition row, no audit entry, no image)."""
    cat = world.catalogue
    item_id = world.in_state(state)
    sha = cat.item(item_id).files[0].sha256  # type: ignore[union-attr]

    def attempt_quarantine() -> None:
        cat.quarantine(item_id, code="late", message_en="late", message_zh="晚")

    def attempt_ingest() -> None:
        cat.record_ingested(item_id, world.ingested(hashlib.sha256(f"rescan {sha}".encode()).hexdigest()))

    def attempt_approve() -> None:
        cat.record_decision(item_id, reviewer_id=world.users["bob"], decision="approve")

    def attempt_batch() -> None:
        world.batch([item_id])

    operations = {  # operation → (status it would move the item to, error when refused)
        attempt_quarantine: (ItemStatus.quarantined, IllegalTransition),
        attempt_ingest: (ItemStatus.processed, IllegalTransition),
        attempt_approve: (ItemStatus.approved, ReviewError),
        attempt_batch: (ItemStatus.batched, CatalogueError),
    }
    refused = 0
    for op, (to, error) in operations.items():
        allowed = to in ALLOWED_TRANSITIONS[state] and (op is not attempt_approve or state is ItemStatus.awaiting_review)
        if allowed:
            continue  # the allowed moves are exercised by the life tests below
        before = world.snapshot(item_id)
        with pytest.raises(error):
            op()
        assert world.snapshot(item_id) == before, op.__name__
        refused += 1
    assert refused >= 2
    assert cat.verify_audit_chain() is None


def test_quarantining_an_item_awaiting_review_is_illegal_and_leaves_no_trace(world: World) -> None:
    item_id = world.awaiting()
    with pytest.raises(IllegalTransition):
        world.catalogue.quarantine(item_id, code="late", message_en="late", message_zh="晚")
    item = world.catalogue.item(item_id)
    assert item is not None and item.status == "awaiting_review" and item.quarantine_code is None


def test_approving_a_quarantined_item_is_a_review_error(world: World) -> None:
    item_id = world.quarantined()
    with pytest.raises(ReviewError, match="not awaiting review"):
        world.catalogue.record_decision(item_id, reviewer_id=world.users["alice"], decision="approve")
    assert world.catalogue.item_status(item_id) is ItemStatus.quarantined
    assert world.count(ReviewDecision) == 0


def test_a_full_life_is_recorded_step_by_step(world: World) -> None:
    item_id = world.minted()
    assert world.transitions(item_id) == [
        (None, "received", ""), ("received", "processed", ""), ("processed", "awaiting_review", ""),
        ("awaiting_review", "approved", ""), ("approved", "batched", ""), ("batched", "minted", ""),
    ]
    status_entries = [(e.action, e.details.get("from")) for e in world.catalogue.audit_entries(item_id=item_id)
                      if e.action.startswith("status:")]
    assert status_entries == [("status:received", None), ("status:processed", "received"),
                              ("status:awaiting_review", "processed"), ("status:approved", "awaiting_review"),
                              ("status:batched", "approved"), ("status:minted", "batched")]
    assert world.catalogue.verify_audit_chain() is None


@pytest.mark.parametrize(("decision", "status"), [("reject", "rejected"), ("send_back", "sent_back")])
def test_reject_and_send_back_keep_their_reason_in_row_and_audit(world: World, decision: str, status: str) -> None:
    item_id = world.decided(decision)
    assert world.transitions(item_id)[-1] == ("awaiting_review", status, "图像模糊")
    last = world.catalogue.audit_entries(item_id=item_id)[-1]
    assert last.action == f"status:{status}" and last.details["reason"] == "图像模糊"


def test_quarantine_is_recorded_with_its_code(world: World) -> None:
    item_id = world.quarantined()
    assert world.transitions(item_id) == [(None, "received", ""), ("received", "quarantined", "truncated_image")]
    item = world.catalogue.item(item_id)
    assert item is not None and (item.quarantine_code, item.quarantine_message_zh) == ("truncated_image", "文件不完整。")
    assert world.catalogue.audit_entries(item_id=item_id)[-1].action == "status:quarantined"


# -- content addressing ---------------------------------------------------------------------------


def test_register_received_is_keyed_by_content(world: World) -> None:
    cat = world.catalogue
    sha = hashlib.sha256(b"one master").hexdigest()
    first, created = cat.register_received(sha256=sha, file_name="a.tif", inbox_path="/inbox/a.tif", size_bytes=10, ingest_run_id=None)
    assert created
    again, created = cat.register_received(sha256=sha, file_name="a_copy.tif", inbox_path="/inbox/a_copy.tif", size_bytes=10,
                                           ingest_run_id=None)
    assert (again, created) == (first, False)
    # the same name once more records nothing new
    audit_before = world.count(AuditEntry)
    assert cat.register_received(sha256=sha, file_name="a.tif", inbox_path="/inbox/a.tif", size_bytes=10,
                                 ingest_run_id=None) == (first, False)
    assert world.count(AuditEntry) == audit_before
    item = cat.item(first)
    assert item is not None and sorted(f.file_name for f in item.files) == ["a.tif", "a_copy.tif"]
    assert "file:same-content" in [e.action for e in cat.audit_entries(item_id=first)]

    other, created = cat.register_received(sha256=hashlib.sha256(b"another master").hexdigest(), file_name="a.tif",
                                           inbox_path="/inbox/a.tif", size_bytes=10, ingest_run_id=None)
    assert created and other != first
    assert len(cat.items()) == 2
    assert len(world.transitions(first)) == 1  # no second 'received'


def test_the_same_name_in_two_folders_is_two_recorded_arrivals(world: World) -> None:
    """Keyed by where the bytes arrived, not by name: neither path is lost or flips back and forth."""
    cat = world.catalogue
    sha = hashlib.sha256(b"scan-7").hexdigest()
    first, _ = cat.register_received(sha256=sha, file_name="scan-7.jpg", inbox_path="/inbox/scan-7.jpg", size_bytes=6, ingest_run_id=None)
    again, created = cat.register_received(sha256=sha, file_name="scan-7.jpg", inbox_path="/inbox/备份/scan-7.jpg", size_bytes=6,
                                           ingest_run_id=None)
    assert (again, created) == (first, False)
    for _ in range(2):  # later runs see both again: nothing new, nothing moved
        for path in ("/inbox/scan-7.jpg", "/inbox/备份/scan-7.jpg"):
            cat.register_received(sha256=sha, file_name="scan-7.jpg", inbox_path=path, size_bytes=6, ingest_run_id=None)
    item = cat.item(first)
    assert item is not None and sorted(f.inbox_path for f in item.files) == ["/inbox/scan-7.jpg", "/inbox/备份/scan-7.jpg"]
    long_ago = datetime(2020, 1, 1, tzinfo=timezone.utc)
    for path in ("/inbox/scan-7.jpg", "/inbox/备份/scan-7.jpg", "/inbox/" + "深" * 2000 + ".jpg"):
        expected = (first, ItemStatus.received) if "深" not in path else None
        assert cat.known_unchanged(path, size_bytes=6, modified_at=long_ago) == expected


def test_register_received_of_an_ingested_item_leaves_its_status(world: World) -> None:
    item_id = world.awaiting()
    sha = world.catalogue.item(item_id).files[0].sha256  # type: ignore[union-attr]
    assert world.catalogue.register_received(sha256=sha, file_name="renamed.jpg", inbox_path="/inbox/renamed.jpg",
                                             size_bytes=1, ingest_run_id=None) == (item_id, False)
    assert world.catalogue.item_status(item_id) is ItemStatus.awaiting_review


# -- the audit chain ------------------------------------------------------------------------------


def _audit_ids(world: World) -> list[int]:
    return [e.id for e in world.catalogue.audit_entries()]


def test_untouched_audit_chain_verifies(world: World) -> None:
    world.minted()
    world.quarantined()
    world.decided("reject")
    assert len(_audit_ids(world)) > 10
    assert world.catalogue.verify_audit_chain() is None


@pytest.mark.parametrize("column,value", [("details", '{"reason": "nothing to see"}'), ("actor", "mallory"),
                                          ("action", "status:approved"), ("item_id", 999)])
def test_editing_an_audit_row_is_detected_at_that_row(world: World, column: str, value: object) -> None:
    world.minted()
    world.decided("reject")
    ids = _audit_ids(world)
    victim = ids[len(ids) // 2]
    with sqlite3.connect(world.db_path) as raw:
        assert raw.execute(f"UPDATE audit_log SET {column} = ? WHERE id = ?", (value, victim)).rowcount == 1
    raw.close()
    assert world.catalogue.verify_audit_chain() == victim


def test_editing_an_audit_row_through_the_engine_is_detected(world: World) -> None:
    world.decided("send_back")
    ids = _audit_ids(world)
    victim = ids[-2]
    with world.catalogue.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET details = json_set(details, '$.reason', 'ok') WHERE id = :id"), {"id": victim})
    assert world.catalogue.verify_audit_chain() == victim


def test_deleting_a_middle_audit_row_is_detected(world: World) -> None:
    world.minted()
    ids = _audit_ids(world)
    middle = ids[len(ids) // 2]
    with sqlite3.connect(world.db_path) as raw:
        raw.execute("DELETE FROM audit_log WHERE id = ?", (middle,))
    raw.close()
    assert world.catalogue.verify_audit_chain() == ids[ids.index(middle) + 1]


# -- reviews --------------------------------------------------------------------------------------


@pytest.mark.parametrize("decision", ["reject", "send_back"])
@pytest.mark.parametrize("reason", ["", "   \n"])
def test_reject_and_send_back_need_a_reason(world: World, decision: str, reason: str) -> None:
    item_id = world.awaiting()
    before = world.snapshot(item_id)
    with pytest.raises(ReviewError, match="reason"):
        world.catalogue.record_decision(item_id, reviewer_id=world.users["alice"], decision=decision, reason=reason)
    assert world.snapshot(item_id) == before


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_digitiser_cannot_decide(world: World, decision: str) -> None:
    item_id = world.awaiting()
    before = world.snapshot(item_id)
    with pytest.raises(ReviewError, match="only reviewers"):
        world.catalogue.record_decision(item_id, reviewer_id=world.users["dora"], decision=decision, reason="不行")
    assert world.snapshot(item_id) == before


def test_unknown_decision_and_unknown_reviewer_are_refused(world: World) -> None:
    item_id = world.awaiting()
    before = world.snapshot(item_id)
    with pytest.raises(ReviewError):
        world.catalogue.record_decision(item_id, reviewer_id=world.users["alice"], decision="maybe")
    with pytest.raises(ReviewError):
        world.catalogue.record_decision(item_id, reviewer_id=4242, decision="approve")
    assert world.snapshot(item_id) == before


def test_an_admin_may_decide(world: World) -> None:
    item_id = world.awaiting()
    assert world.catalogue.record_decision(item_id, reviewer_id=world.users["adam"], decision="approve") is ItemStatus.approved


def test_graded_relic_needs_two_distinct_reviewers(world: World) -> None:
    cat = world.catalogue
    item_id = world.awaiting(required_approvals=2)
    assert cat.record_decision(item_id, reviewer_id=world.users["alice"], decision="approve") is ItemStatus.awaiting_review
    assert cat.item_status(item_id) is ItemStatus.awaiting_review

    before = world.snapshot(item_id)
    with pytest.raises(ReviewError, match="already approved"):
        cat.record_decision(item_id, reviewer_id=world.users["alice"], decision="approve")
    assert world.snapshot(item_id) == before

    assert cat.record_decision(item_id, reviewer_id=world.users["bob"], decision="approve") is ItemStatus.approved
    assert [d.reviewer.username for d in cat.approvals_for(item_id)] == ["alice", "bob"]
    assert world.transitions(item_id)[-1][:2] == ("awaiting_review", "approved")
    assert [e.action for e in cat.audit_entries(item_id=item_id)][-4:] == [
        "status:awaiting_review", "review:approve", "review:approve", "status:approved"]


def test_a_second_reviewer_may_still_reject_a_half_approved_relic(world: World) -> None:
    item_id = world.awaiting(required_approvals=2)
    world.catalogue.record_decision(item_id, reviewer_id=world.users["alice"], decision="approve")
    assert world.catalogue.record_decision(item_id, reviewer_id=world.users["bob"], decision="reject",
                                           reason="器物编号不符") is ItemStatus.rejected


def test_undecided_count_and_gates_ready_follow_the_decisions(world: World) -> None:
    cat = world.catalogue
    run = world.run()
    first, second = world.awaiting(run), world.awaiting(run, required_approvals=2)
    world.quarantined(run)  # quarantined items are not waiting for anyone
    other_run = world.run()
    world.awaiting(other_run)
    cat.set_gate_flow_run(run, "gate-flow-run-1")
    ungated = world.run()  # fully decided but no gate waiting: never listed
    world.decided("approve", ungated)

    assert cat.undecided_count(run) == 2
    assert cat.gates_ready_to_resume() == []

    cat.record_decision(first, reviewer_id=world.users["alice"], decision="approve")
    assert cat.undecided_count(run) == 1
    cat.record_decision(second, reviewer_id=world.users["alice"], decision="approve")
    assert cat.undecided_count(run) == 1  # one of two approvals
    assert cat.gates_ready_to_resume() == []
    cat.record_decision(second, reviewer_id=world.users["bob"], decision="send_back", reason="重新扫描")
    assert cat.undecided_count(run) == 0
    assert [(r.id, r.gate_flow_run_id) for r in cat.gates_ready_to_resume()] == [(run, "gate-flow-run-1")]
    assert cat.undecided_count(other_run) == 1 and cat.undecided_count(ungated) == 0

    assert [r.id for r in cat.open_gates()] == [run]
    cat.complete_gate(run)
    cat.complete_gate(run)  # idempotent: a replayed gate run may report twice
    assert cat.open_gates() == [] and cat.gates_ready_to_resume() == []
    assert [e.action for e in cat.audit_entries()].count("gate:complete") == 1

    with pytest.raises(CatalogueError):
        cat.set_gate_flow_run(9999, "nope")


# -- minting --------------------------------------------------------------------------------------


def test_mint_batch_with_an_unapproved_item_is_refused_and_rolled_back(world: World) -> None:
    cat = world.catalogue
    approved = world.decided("approve")
    awaiting = world.awaiting()
    transitions_before = len(world.transitions(approved))
    audit_before = world.count(AuditEntry)
    with pytest.raises(CatalogueError, match=f"item {awaiting} is not approved"):
        world.batch([approved, awaiting], ref="rf-refused")
    assert cat.mint_batches() == [] and world.count(MintBatchItem) == 0
    assert cat.item_status(approved) is ItemStatus.approved
    assert cat.item_status(awaiting) is ItemStatus.awaiting_review
    assert len(world.transitions(approved)) == transitions_before
    assert world.count(AuditEntry) == audit_before
    # the refused batch left nothing behind that blocks the same batch ref later
    batch_id = world.batch([approved], ref="rf-refused")
    assert [b.batch_ref for b in cat.open_mint_batches()] == ["rf-refused"]
    assert [link.item_id for link in cat.mint_batch(batch_id).item_links] == [approved]


def test_an_item_cannot_be_batched_twice(world: World) -> None:
    item_id, batch_id = world.batched()
    with pytest.raises(CatalogueError):
        world.batch([item_id])
    assert [b.id for b in world.catalogue.mint_batches()] == [batch_id]


@pytest.mark.parametrize("which", ["missing one", "extra one", "wrong one", "none"])
def test_receipt_must_cover_exactly_the_batch(world: World, which: str) -> None:
    cat = world.catalogue
    a, b = world.decided("approve"), world.decided("approve")
    outsider = world.decided("approve")
    batch_id = world.batch([a, b])
    tokens = {
        "missing one": [(a, "tok-a", "0x1")],
        "extra one": [(a, "tok-a", "0x1"), (b, "tok-b", "0x2"), (outsider, "tok-c", "0x3")],
        "wrong one": [(a, "tok-a", "0x1"), (outsider, "tok-c", "0x3")],
        "none": [],
    }[which]
    with pytest.raises(CatalogueError, match="covers items"):
        cat.record_mint_receipt(batch_id, chain="c", tokens=tokens, raw={})
    assert cat.receipts() == []
    assert [bt.id for bt in cat.open_mint_batches()] == [batch_id]
    assert {cat.item_status(i) for i in (a, b)} == {ItemStatus.batched}
    assert cat.item_status(outsider) is ItemStatus.approved


def test_good_receipt_mints_the_items_and_closes_the_batch(world: World) -> None:
    cat = world.catalogue
    a, b = world.decided("approve"), world.decided("approve")
    batch_id = world.batch([a, b])
    assert [bt.id for bt in cat.open_mint_batches()] == [batch_id]
    cat.record_mint_receipt(batch_id, chain="sandbox-chain", tokens=[(b, "tok-b", "0x2"), (a, "tok-a", "0x1")], raw={"ok": True})
    assert cat.open_mint_batches() == []
    batch = cat.mint_batch(batch_id)
    assert batch.status == "minted" and batch.sent_at is not None and batch.last_error is None
    assert {cat.item_status(a), cat.item_status(b)} == {ItemStatus.minted}
    assert sorted((r.item_id, r.token_id, r.chain) for r in cat.receipts()) == [(a, "tok-a", "sandbox-chain"), (b, "tok-b", "sandbox-chain")]
    assert cat.approved_items() == []
    assert cat.verify_audit_chain() is None


def test_a_repeated_receipt_is_a_no_op_and_a_different_one_is_refused(world: World) -> None:
    """Two mint runs may send the same open batch; the issuer answers both with the same receipt."""
    cat = world.catalogue
    item_id, batch_id = world.batched()
    cat.record_mint_receipt(batch_id, chain="c", tokens=[(item_id, "tok-1", "0x1")], raw={})
    audit_before = world.count(AuditEntry)
    cat.record_mint_receipt(batch_id, chain="c", tokens=[(item_id, "tok-1", "0x1")], raw={})
    with pytest.raises(CatalogueError, match="already minted"):
        cat.record_mint_receipt(batch_id, chain="c", tokens=[(item_id, "tok-2", "0x2")], raw={})
    assert [r.token_id for r in cat.receipts()] == ["tok-1"]
    assert world.count(AuditEntry) == audit_before
    assert cat.item_status(item_id) is ItemStatus.minted
    assert world.transitions(item_id)[-1][:2] == ("batched", "minted") and len(world.transitions(item_id)) == 6


def test_failed_send_keeps_the_batch_open_and_a_permanent_refusal_closes_it(world: World) -> None:
    cat = world.catalogue
    _, batch_id = world.batched()
    cat.record_mint_failure(batch_id, error="503 from issuer", permanent=False)
    assert [(b.id, b.status, b.attempts) for b in cat.open_mint_batches()] == [(batch_id, "failed", 1)]
    cat.record_mint_failure(batch_id, error="422 invalid", permanent=True)
    assert cat.open_mint_batches() == []
    assert cat.mint_batch(batch_id).status == "rejected"



def test_reads_never_wait_for_a_writer_but_writers_queue(tmp_path: Path) -> None:
    """Review pages (reads) go on while a flow holds the write lock; a second writer waits its turn."""
    import threading

    catalogue = Catalogue(f"sqlite:///{tmp_path / 'locks.sqlite3'}")
    catalogue.migrate()
    catalogue.add_user("reader", "x", "reviewer")
    events: list[str] = []
    release = threading.Event()

    def writer() -> None:
        with catalogue.session() as s:  # holds BEGIN IMMEDIATE until released
            catalogue.audit(s, actor="flow", action="test:hold")
            events.append("writer holds lock")
            release.wait(timeout=10)
        events.append("writer released")

    def second_writer() -> None:
        catalogue.add_user("late", "x", "reviewer")
        events.append("second writer done")

    t1 = threading.Thread(target=writer)
    t1.start()
    while "writer holds lock" not in events:
        threading.Event().wait(0.01)
    t2 = threading.Thread(target=second_writer)
    t2.start()
    assert catalogue.user_by_name("reader") is not None and catalogue.count_users() == 1  # not blocked
    events.append("read done")
    release.set()
    t1.join()
    t2.join()
    assert events.index("read done") < events.index("writer released") < events.index("second writer done")
    assert catalogue.count_users() == 2
    catalogue.dispose()
