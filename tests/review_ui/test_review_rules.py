"""The catalogue enforces the role matrix itself, whatever calls it: a graded relic's further approvals are
a senior reviewer's, and nobody approves an item that an ingest run they started brought in or changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from review_world import ReviewWorld
from sqlalchemy import select, text

from relicflow.catalogue import ItemStatus
from relicflow.catalogue.migrate import alembic_config
from relicflow.catalogue.models import IngestRun
from relicflow.catalogue.objects import RecordUpdate
from relicflow.errors import OwnItemRefused, ReviewError, SecondApprovalRefused


def approve(world: ReviewWorld, item_id: int, name: str) -> ItemStatus:
    return world.catalogue.record_decision(item_id, reviewer_id=world.user_ids[name], decision="approve")


@pytest.mark.parametrize("second", ["bob", "adam"])
def test_only_a_senior_reviewer_gives_a_graded_relic_its_second_approval(world: ReviewWorld, second: str) -> None:
    item_id = world.add_item(world.new_run(), grade="一级", required_approvals=2)
    assert approve(world, item_id, "alice") is ItemStatus.awaiting_review
    with pytest.raises(SecondApprovalRefused, match="only a senior reviewer"):
        approve(world, item_id, second)  # a reviewer, and an administrator too
    assert [d.reviewer.username for d in world.catalogue.approvals_for(item_id)] == ["alice"]  # nothing written
    assert approve(world, item_id, "sara") is ItemStatus.approved


def test_a_senior_reviewer_first_still_needs_a_senior_second(world: ReviewWorld) -> None:
    item_id = world.add_item(world.new_run(), grade="一级", required_approvals=2)
    approve(world, item_id, "sara")
    with pytest.raises(SecondApprovalRefused):
        approve(world, item_id, "alice")
    world.catalogue.add_user("shen", world.catalogue.account("sara").password_hash, "senior_reviewer")  # type: ignore[union-attr]
    shen = world.catalogue.account("shen").id  # type: ignore[union-attr]
    assert world.catalogue.record_decision(item_id, reviewer_id=shen, decision="approve") is ItemStatus.approved


def test_ungraded_items_and_refusals_need_no_senior(world: ReviewWorld) -> None:
    run = world.new_run()
    plain = world.add_item(run)
    assert approve(world, plain, "bob") is ItemStatus.approved
    graded = world.add_item(run, grade="一级", required_approvals=2)
    approve(world, graded, "alice")
    assert world.catalogue.record_decision(graded, reviewer_id=world.user_ids["bob"], decision="reject",
                                           reason="与登记信息不符") is ItemStatus.rejected


@pytest.mark.parametrize("name", ["otto", "dora"])
def test_auditors_and_digitisers_never_decide(world: ReviewWorld, name: str) -> None:
    item_id = world.add_item(world.new_run())
    for decision, reason in (("approve", ""), ("reject", "x"), ("send_back", "x")):
        with pytest.raises(ReviewError, match="only reviewers"):
            world.catalogue.record_decision(item_id, reviewer_id=world.user_ids[name], decision=decision, reason=reason)


def operator_run(world: ReviewWorld, operator: str | None) -> int:
    return world.catalogue.start_ingest_run(inbox=str(world.settings.inbox), sheet=None, flow_run_id=None, operator=operator)


def test_nobody_approves_what_their_own_ingest_run_brought_in(world: ReviewWorld) -> None:
    item_id = world.add_item(operator_run(world, "alice"))
    assert world.catalogue.item_handlers(item_id) == {"alice": [1]}
    with pytest.raises(OwnItemRefused) as refused:
        approve(world, item_id, "alice")
    assert refused.value.runs == [1]
    assert world.catalogue.approvals_for(item_id) == []
    assert approve(world, item_id, "bob") is ItemStatus.approved  # another reviewer may


def test_a_correction_or_a_rescan_by_someone_makes_the_item_theirs_too(world: ReviewWorld) -> None:
    scheduled = operator_run(world, None)
    item_id = world.add_item(scheduled, accession="MB-9")
    assert world.catalogue.item_handlers(item_id) == {}
    corrected = operator_run(world, "alice")
    update = RecordUpdate(accession_number="MB-9", accession_number_source="sheet", title="青花缠枝莲纹梅瓶（更正）",
                          grade="三级", required_approvals=1, sheet_fields={"title": "青花缠枝莲纹梅瓶（更正）"})
    assert world.catalogue.update_record_from_sheet(item_id, update, run_id=corrected)
    with pytest.raises(OwnItemRefused):
        approve(world, item_id, "alice")

    other = world.add_item(scheduled, accession="MB-10")
    rescan = operator_run(world, "bob")
    joined = world.add_item(rescan, accession="MB-10")  # a second photograph of the same object, from bob's run
    assert world.catalogue.item(joined).superseded_by_item_id == other  # type: ignore[union-attr]
    assert world.catalogue.item_handlers(other) == {"bob": [rescan]}
    with pytest.raises(OwnItemRefused):
        approve(world, other, "bob")
    assert approve(world, other, "alice") is ItemStatus.approved


def test_migration_0012_adds_its_columns_to_a_0010_catalogue_and_keeps_its_rows(tmp_path: Path, password_hash: str) -> None:
    from alembic import command

    from relicflow.catalogue import Catalogue

    catalogue = Catalogue(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    command.upgrade(alembic_config(catalogue.engine), "0010")
    with catalogue.engine.begin() as conn:
        conn.execute(text("INSERT INTO users (username, display_name, password_hash, role, active, created_at) "
                          "VALUES ('wang', 'Wang', :h, 'reviewer', 1, '2026-01-01 00:00:00')"), {"h": password_hash})
        conn.execute(text("INSERT INTO ingest_runs (inbox, started_at, summary, files_total, files_done) VALUES ('inbox', '2026-01-01 00:00:00', '{}', 0, 0)"))
    catalogue.migrate()
    wang = catalogue.account("wang")
    assert wang is not None and wang.locale is None and wang.role == "reviewer"
    with catalogue.read_session() as s:
        assert s.scalar(select(IngestRun.operator)) is None
    command.downgrade(alembic_config(catalogue.engine), "0010")
    catalogue.migrate()
    catalogue.dispose()
