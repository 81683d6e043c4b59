"""Attacks on the review record by someone with write access to the catalogue database.

Each attack is plain SQL against the real catalogue (SQLite here, PostgreSQL in the `.ci/with-postgres`
pass); `relicflow audit verify` must report it with a non-zero exit, and the mint must refuse to run, so
the real sandbox issuer (over HTTP) holds no token afterwards.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from flows.mint import mint_flow
from relicflow.catalogue import Catalogue
from relicflow.catalogue.audit_chain import GENESIS_HASH, entry_body, key_fingerprint, seal
from relicflow.catalogue.models import AuditEntry
from relicflow.cli import app
from relicflow.errors import RecordBroken
from relicflow.passwords import hash_password
from relicflow.settings import Settings
from tests.flows.test_mint import ingest_objects, ledger_tokens, start_sandbox

pytestmark = pytest.mark.usefixtures("prefect_server")


@dataclass
class Reviewed:
    settings: Settings
    catalogue: Catalogue
    approved: list[int]
    waiting: int
    reviewers: dict[str, int]

    def sql(self, statement: str, **params: object) -> None:
        with self.catalogue.engine.begin() as conn:
            conn.execute(text(statement), params)

    def scalar(self, statement: str, **params: object) -> object:
        with self.catalogue.engine.connect() as conn:
            return conn.execute(text(statement), params).scalar()

    def verify(self) -> tuple[int, dict]:
        result = CliRunner().invoke(app, ["--data-dir", str(self.settings.data_dir), "audit", "verify", "--json", "--no-anchor"])
        return result.exit_code, json.loads(result.stdout)

    def anchor(self) -> None:
        result = CliRunner().invoke(app, ["--data-dir", str(self.settings.data_dir), "audit", "verify"])
        assert result.exit_code == 0, result.output


@pytest.fixture
def reviewed(settings: Settings) -> Reviewed:
    """Three ingested items: two approved by li, one still awaiting review."""
    ingest_objects(settings, ["red", "green", "blue"])
    catalogue = Catalogue.from_settings(settings)
    reviewers = {name: catalogue.add_user(name, hash_password("pw"), "reviewer") for name in ("li", "wang")}
    ids = [item.id for item in catalogue.items_awaiting_review()]
    for item_id in ids[:2]:
        catalogue.record_decision(item_id, reviewer_id=reviewers["li"], decision="approve")
    return Reviewed(settings, catalogue, ids[:2], ids[2], reviewers)


def _approval_of(world: Reviewed, item_id: int) -> int:
    return int(world.scalar("SELECT id FROM review_decisions WHERE item_id = :i AND decision = 'approve'", i=item_id))  # type: ignore[arg-type]


def edit_decision_reviewer(world: Reviewed) -> None:
    world.sql("UPDATE review_decisions SET reviewer_id = :r WHERE id = :d", r=world.reviewers["wang"], d=_approval_of(world, world.approved[0]))


def flip_status_to_approved(world: Reviewed) -> None:
    world.sql("UPDATE items SET status = 'approved' WHERE id = :i", i=world.waiting)


def delete_approval(world: Reviewed) -> None:
    world.sql("DELETE FROM review_decisions WHERE id = :d", d=_approval_of(world, world.approved[0]))


def edit_grade_after_review(world: Reviewed) -> None:
    world.sql("UPDATE items SET grade = '二级' WHERE id = :i", i=world.approved[0])


def delete_the_tail(world: Reviewed) -> None:
    """The anchor written by `audit verify` names the head; the newest entries and what they record go."""
    world.anchor()
    last_decision = _approval_of(world, world.approved[1])
    first_gone = int(world.scalar("SELECT MIN(id) FROM audit_log WHERE item_id = :i AND action = 'review:approve'",  # type: ignore[arg-type]
                                  i=world.approved[1]))
    world.sql("DELETE FROM audit_log WHERE id >= :e", e=first_gone)
    world.sql("DELETE FROM review_decisions WHERE id = :d", d=last_decision)
    world.sql("DELETE FROM status_transitions WHERE item_id = :i AND to_status = 'approved'", i=world.approved[1])
    world.sql("UPDATE items SET status = 'awaiting_review' WHERE id = :i", i=world.approved[1])


def _rechain(world: Reviewed, make_seal: Callable[[bytes], str], key_id: str | None) -> None:
    """Re-seal every entry the way an attacker without the key could: edit one, recompute the rest."""
    with world.catalogue.session() as s:
        entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        victim = next(e for e in entries if e.action == "review:approve")
        victim.actor = "wang"
        for e in entries:
            e.entry_hash = f"x-{e.id}"
        s.flush()
        prev = GENESIS_HASH
        for e in entries:
            e.prev_hash = prev
            e.entry_hash = make_seal(entry_body(prev, at=e.at, actor=e.actor, action=e.action, item_id=e.item_id, details=e.details))
            e.key_id = key_id
            prev = e.entry_hash
    world.sql("UPDATE review_decisions SET reviewer_id = :r WHERE id = :d", r=world.reviewers["wang"], d=_approval_of(world, world.approved[0]))


def recompute_chain_unkeyed(world: Reviewed) -> None:
    real_id = str(world.scalar("SELECT key_id FROM audit_log ORDER BY id LIMIT 1"))
    _rechain(world, lambda body: hashlib.sha256(body).hexdigest(), real_id)


def recompute_chain_with_own_key(world: Reviewed) -> None:
    own = secrets.token_bytes(32)
    _rechain(world, lambda body: seal(own, body), key_fingerprint(own))


ATTACKS = {  # name: (attack, where verify reports it, what it reports, the item it bends or None for the whole chain)
    "edit a decision's reviewer": (edit_decision_reviewer, "disagreements", "decision_not_recorded", "approved"),
    "flip a status to approved": (flip_status_to_approved, "disagreements", "status_not_recorded", "waiting"),
    "delete an approval": (delete_approval, "disagreements", "decision_row_missing", "approved"),
    "edit the grade after review": (edit_grade_after_review, "disagreements", "record_changed", "approved"),
    "delete the chain's tail": (delete_the_tail, "anchor_problems", "missing from the catalogue", None),
    "recompute the chain without the key": (recompute_chain_unkeyed, "chain_break", "changed", None),
    "re-seal the chain with another key": (recompute_chain_with_own_key, "chain_break", "other_key", None),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_each_attack_is_reported_by_audit_verify_and_nothing_it_touches_is_minted(reviewed: Reviewed, attack: str) -> None:
    tamper, section, expected, bent = ATTACKS[attack]
    code, report = reviewed.verify()
    assert code == 0 and report["ok"], report
    tamper(reviewed)
    code, report = reviewed.verify()
    assert code == 1 and not report["ok"]
    if section == "disagreements":
        assert expected in {d["code"] for d in report["disagreements"]}, report
    elif section == "anchor_problems":
        assert any(expected in p for p in report["anchor_problems"]), report
    else:
        assert report["chain_break"]["reason"] == expected, report
    with start_sandbox(reviewed.settings) as url:
        s = reviewed.settings.model_copy(update={"issuer_url": url})
        if bent is None:  # the chain itself does not vouch for anything: the mint refuses to run at all
            with pytest.raises(RecordBroken):
                mint_flow(settings=s)
            assert ledger_tokens(url, s) == {}
            assert not any(reviewed.catalogue.item_status(i).value in ("batched", "minted") for i in reviewed.approved)
        else:  # one item's rows differ from an intact chain: that item is held, the others are minted
            target = reviewed.approved[0] if bent == "approved" else reviewed.waiting
            result = mint_flow(settings=s)
            assert list(result["held"]) == [target], result  # with the rules' own code, or record_not_as_chained
            minted = set(ledger_tokens(url, s))
            assert f"relicflow:item:{target}" not in minted
            assert minted == {f"relicflow:item:{i}" for i in reviewed.approved if i != target}
            item = reviewed.catalogue.item(target)
            assert item is not None and item.mint_hold_code == result["held"][target]


def test_an_untouched_record_verifies_mints_and_the_batch_carries_an_anchored_head(reviewed: Reviewed) -> None:
    with start_sandbox(reviewed.settings) as url:
        s = reviewed.settings.model_copy(update={"issuer_url": url})
        result = mint_flow(settings=s)
        assert result["minted"] == 2
    batch = reviewed.catalogue.mint_batches()[0]
    anchor = batch.request_body["audit_anchor"]
    assert reviewed.catalogue.audit_entry_hash(anchor["entry_id"]) == anchor["entry_hash"]
    code, report = reviewed.verify()
    assert code == 0 and report["ok"] and report["anchors_checked"] >= 2, report  # the ingest run's and the batch's


def test_an_entry_edited_to_match_an_edited_decision_is_not_evidence_even_inside_the_batching_transaction(reviewed: Reviewed) -> None:
    """Row and entry changed together (li's approval made wang's): they agree, but the entry's seal does not."""
    target = reviewed.approved[0]
    decision = _approval_of(reviewed, target)
    reviewed.sql("UPDATE review_decisions SET reviewer_id = :r WHERE id = :d", r=reviewed.reviewers["wang"], d=decision)
    with reviewed.catalogue.session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.item_id == target, AuditEntry.action == "review:approve")).one()
        entry.actor = "wang"
        entry.details = {**entry.details, "reviewer_id": reviewed.reviewers["wang"]}
    assessment = reviewed.catalogue.assess_for_mint(item_ids=reviewed.approved)
    assert [i for i, _ in assessment.eligible] == [reviewed.approved[1]]
    assert [(i, h.code) for i, h in assessment.held] == [(target, "decision_record_mismatch")]
    code, report = reviewed.verify()
    assert code == 1 and report["chain_break"]["reason"] == "changed"


def test_a_restore_can_be_accepted_only_for_a_record_that_is_otherwise_intact(reviewed: Reviewed) -> None:
    delete_the_tail(reviewed)  # what a restore from a backup looks like to the anchors
    flip_status_to_approved(reviewed)  # ... plus an edit no restore explains
    data_dir = str(reviewed.settings.data_dir)
    refused = CliRunner().invoke(app, ["--data-dir", data_dir, "--lang", "en", "audit", "accept-restore", "--reason", "backup"])
    assert refused.exit_code == 1 and "a restore cannot explain" in refused.output
    reviewed.sql("UPDATE items SET status = 'awaiting_review' WHERE id = :i", i=reviewed.waiting)
    accepted = CliRunner().invoke(app, ["--data-dir", data_dir, "--lang", "en", "audit", "accept-restore", "--reason", "backup of the 20th",
                                        "--by", "zhao"])
    assert accepted.exit_code == 0 and "Restore accepted" in accepted.output, accepted.output
    code, report = reviewed.verify()
    assert code == 0 and report["ok"], report
    [entry] = reviewed.catalogue.audit_entries_of("audit:restore-accepted")
    assert entry.actor == "cli:zhao" and entry.details["reason"] == "backup of the 20th" and entry.details["lost"]
