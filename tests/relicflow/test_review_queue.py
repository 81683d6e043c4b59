"""The review queue's SQL (relicflow/catalogue/review_queue.py) on a real migrated catalogue: filters, search
with LIKE's own characters, sorts, keyset pages while items are decided between them, counts, neighbours,
the approval rule as the item page computes it, and (SQLite) that pages and neighbours use the indexes.

Runs in the PostgreSQL pass too (the ``settings`` fixture gives that pass a PostgreSQL database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from catalogue_template import copy_migrated
from sqlalchemy import event, text

from relicflow.catalogue import Catalogue
from relicflow.catalogue.ingested import WarningNote
from relicflow.catalogue.review_queue import QueueFilter, decode_cursor, encode_cursor
from relicflow.catalogue.review_queue_sql import statement_shape
from relicflow.errors import QueueQueryInvalid
from relicflow.passwords import hash_password
from relicflow.settings import Settings
from relicflow.storage import LocalStore
from review_ui.views import approvals_on_current_image
from review_world import PASSWORD, USERS, ReviewWorld

WARN = WarningNote(code="low_resolution", message_en="The scan is small.", message_zh="扫描分辨率低。", details={})


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose: once for the module's users


@pytest.fixture
def qworld(tmp_path: Path, settings: Settings, password_hash: str, migrated_template: Path) -> Iterator[ReviewWorld]:
    if settings.database_url.startswith("sqlite:///"):  # the PostgreSQL pass migrates its own new database
        copy_migrated(migrated_template, Path(settings.database_url.removeprefix("sqlite:///")))
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    user_ids = {name: catalogue.add_user(name, password_hash, role) for name, role in USERS.items()}
    yield ReviewWorld(settings=settings, catalogue=catalogue, store=LocalStore(tmp_path / "objects"), user_ids=user_ids)
    catalogue.dispose()


def ids(world: ReviewWorld, f: QueueFilter = QueueFilter(), sort: str = "oldest", user: str = "alice") -> list[int]:
    page = world.catalogue.review_queue_page(f, sort, user_id=world.user_ids[user], limit=500)
    assert page.total == len(page.rows)
    return [r.id for r in page.rows]


@pytest.fixture
def mixed(qworld: ReviewWorld) -> dict[str, int]:
    w = qworld
    run1, run2 = w.new_run(), w.new_run()
    made = {
        "plain": w.add_item(run1, accession="MB-0001", title="青花缠枝莲纹梅瓶", file_name="mb0001_front.jpg"),
        "warned": w.add_item(run1, accession="MB-0002", title="Bronze Jue", warnings=[WARN]),
        "graded": w.add_item(run2, accession="MB-0003", grade="一级", required_approvals=2),
        "percent": w.add_item(run2, accession="MB-0004", file_name="100%_scan.jpg"),
        "underscore": w.add_item(run2, accession="MB_0005"),
        "lookalike": w.add_item(run2, accession="MBX0005", title="Bronze jue lid"),
        "no_sheet": w.add_item(run2, sheet_row=False, file_name="unknown_object.jpg"),
    }
    made["duplicate"] = w.add_item(run2, accession="MB-0006", duplicate_of=[made["plain"]])
    made["run1"], made["run2"] = run1, run2
    return made


def test_filters_pick_exactly_their_items(qworld: ReviewWorld, mixed: dict[str, int]) -> None:
    everything = [mixed[k] for k in ("plain", "warned", "graded", "percent", "underscore", "lookalike", "no_sheet", "duplicate")]
    assert ids(qworld) == everything
    assert ids(qworld, QueueFilter(run_id=mixed["run1"])) == [mixed["plain"], mixed["warned"]]
    assert ids(qworld, QueueFilter(grade="一级")) == [mixed["graded"]]
    assert ids(qworld, QueueFilter(has_warnings=True)) == [mixed["warned"]]
    assert ids(qworld, QueueFilter(has_duplicates=True)) == [mixed["plain"], mixed["duplicate"]]  # each names the other
    assert ids(qworld, QueueFilter(compliance="two_approvals")) == [mixed["graded"]]
    assert ids(qworld, QueueFilter(compliance="record_incomplete")) == [mixed["no_sheet"]]
    assert ids(qworld, QueueFilter(run_id=mixed["run2"], has_duplicates=True)) == [mixed["duplicate"]]
    assert ids(qworld, QueueFilter(run_id=mixed["run1"], grade="一级")) == []


def test_search_is_case_insensitive_and_takes_like_characters_literally(qworld: ReviewWorld, mixed: dict[str, int]) -> None:
    assert ids(qworld, QueueFilter(search="mb-0001")) == [mixed["plain"]]  # accession number, any case
    assert ids(qworld, QueueFilter(search="bronze JUE")) == [mixed["warned"], mixed["lookalike"]]  # title
    assert ids(qworld, QueueFilter(search="梅瓶")) == [mixed[k] for k in ("plain", "graded", "percent", "underscore", "duplicate")]
    assert ids(qworld, QueueFilter(search="FRONT.JPG")) == [mixed["plain"]]  # a file name
    assert ids(qworld, QueueFilter(search="%")) == [mixed["percent"]]  # not "anything"
    assert ids(qworld, QueueFilter(search="MB_0")) == [mixed["underscore"]]  # not "MB, any character, 0"
    assert ids(qworld, QueueFilter(search="0%_")) == [mixed["percent"]]
    assert ids(qworld, QueueFilter(search="\\")) == []
    assert ids(qworld, QueueFilter(search="  ")) == ids(qworld)  # blank: no search


def test_one_statement_serves_every_run_grade_and_search_text(qworld: ReviewWorld, mixed: dict[str, int]) -> None:
    # values are bound, not built into the statement: a new run or search costs no statement building
    assert statement_shape(QueueFilter(run_id=3, grade="一级", search="abc")) == statement_shape(QueueFilter(run_id=70, grade="二级", search="xyz"))
    assert statement_shape(QueueFilter(search="ab")) != statement_shape(QueueFilter(search="abc"))  # too short for trigrams
    assert ids(qworld, QueueFilter(run_id=mixed["run2"], grade="一级")) == [mixed["graded"]]
    assert ids(qworld, QueueFilter(run_id=mixed["run1"], grade="三级")) == [mixed["plain"], mixed["warned"]]


def test_sorts(qworld: ReviewWorld, mixed: dict[str, int]) -> None:
    oldest = ids(qworld)
    assert ids(qworld, sort="newest") == oldest[::-1]
    by_number = ids(qworld, sort="accession")
    assert by_number[0] == mixed["no_sheet"]  # no number sorts first
    numbers = [qworld.catalogue.item(i).accession_number for i in by_number[1:]]  # type: ignore[union-attr]
    assert numbers == sorted(numbers)
    assert ids(qworld, sort="run") == [mixed["plain"], mixed["warned"], *[i for i in oldest if i not in (mixed["plain"], mixed["warned"])]]


def test_rows_carry_what_the_table_shows(qworld: ReviewWorld, mixed: dict[str, int]) -> None:
    rows = {r.id: r for r in qworld.catalogue.review_queue_page(user_id=qworld.user_ids["alice"]).rows}
    plain = rows[mixed["plain"]]
    assert (plain.accession_number, plain.title, plain.file_names, plain.view_count, plain.has_thumbnail) == (
        "MB-0001", "青花缠枝莲纹梅瓶", ("mb0001_front.jpg",), 1, True)
    assert rows[mixed["warned"]].warning_count == 1 and rows[mixed["duplicate"]].duplicate_count == 1
    assert rows[mixed["graded"]].required_approvals == 2 and rows[mixed["plain"]].warning_count == 0


def test_keyset_pages_have_no_duplicates_or_gaps_while_items_are_decided(qworld: ReviewWorld) -> None:
    w = qworld
    run = w.new_run()
    made = [w.add_item(run) for _ in range(23)]
    alice, bob = w.user_ids["alice"], w.user_ids["bob"]
    decided = {made[1], made[7], made[12], made[20]}  # decided by someone else while alice pages through
    seen: list[int] = []
    page = w.catalogue.review_queue_page(user_id=alice, limit=5)
    pages = 0
    while True:
        pages += 1
        seen += [r.id for r in page.rows]
        if pages == 1:
            for item_id in decided:  # one on this page, the rest ahead of it
                w.catalogue.record_decision(item_id, reviewer_id=bob, decision="approve")
        if page.next_cursor is None:
            break
        page = w.catalogue.review_queue_page(user_id=alice, limit=5, after=page.next_cursor)
    assert len(seen) == len(set(seen))
    assert set(seen) == (set(made) - decided) | (decided & set(made[:5]))
    assert seen == sorted(seen)
    # and back: the page before the last page is the 5 before it
    last = w.catalogue.review_queue_page(user_id=alice, limit=5, after=encode_cursor([made[14]]))
    back = w.catalogue.review_queue_page(user_id=alice, limit=5, before=last.prev_cursor)
    assert [r.id for r in back.rows] == [i for i in made if i not in decided and i <= made[14]][-5:]
    assert back.next_cursor is not None and back.prev_cursor is not None
    first = w.catalogue.review_queue_page(user_id=alice, limit=5)
    assert first.prev_cursor is None and first.total == 19


def test_keyset_pages_of_the_accession_sort(qworld: ReviewWorld) -> None:
    w = qworld
    run = w.new_run()
    for n in (5, 3, 9, 1, 7, 2, 8):
        w.add_item(run, accession=f"AC-{n}")
    alice = w.user_ids["alice"]
    numbers, page = [], w.catalogue.review_queue_page(QueueFilter(), "accession", user_id=alice, limit=3)
    while True:
        numbers += [r.accession_number for r in page.rows]
        if page.next_cursor is None:
            break
        page = w.catalogue.review_queue_page(QueueFilter(), "accession", user_id=alice, limit=3, after=page.next_cursor)
    assert numbers == [f"AC-{n}" for n in (1, 2, 3, 5, 7, 8, 9)]


def test_counts_match_the_filters(qworld: ReviewWorld, mixed: dict[str, int]) -> None:
    counts = qworld.catalogue.queue_counts(user_id=qworld.user_ids["alice"])
    assert counts == {"awaiting_review": 8, "resubmitted": 0, "undecided": 8, "warnings": 1, "duplicates": 2,
                      "two_approvals": 1, "record_incomplete": 1, "mine": 0, "second": 0, "quarantined": 0}
    qworld.catalogue.record_decision(mixed["graded"], reviewer_id=qworld.user_ids["alice"], decision="approve")
    assert qworld.catalogue.queue_counts(user_id=qworld.user_ids["alice"])["mine"] == 1
    bobs = qworld.catalogue.queue_counts(user_id=qworld.user_ids["bob"])
    assert (bobs["mine"], bobs["second"]) == (0, 1)
    assert ids(qworld, QueueFilter(approval="second"), user="bob") == [mixed["graded"]]
    assert ids(qworld, QueueFilter(approval="second"), user="alice") == []


def test_neighbours_follow_the_filtered_order(qworld: ReviewWorld, mixed: dict[str, int]) -> None:
    c, alice = qworld.catalogue, qworld.user_ids["alice"]
    run2 = QueueFilter(run_id=mixed["run2"])
    assert c.queue_neighbours(mixed["graded"], run2, user_id=alice) == (None, mixed["percent"])
    assert c.queue_neighbours(mixed["percent"], run2, "newest", user_id=alice) == (mixed["underscore"], mixed["graded"])
    assert c.queue_neighbours(mixed["duplicate"], run2, user_id=alice) == (mixed["no_sheet"], None)
    c.record_decision(mixed["percent"], reviewer_id=alice, decision="approve")  # decided: still has neighbours
    assert c.queue_neighbours(mixed["percent"], run2, user_id=alice) == (mixed["graded"], mixed["underscore"])
    assert c.next_to_review(mixed["duplicate"], run2, user_id=alice) == mixed["graded"]  # wraps to the start
    c.record_decision(mixed["graded"], reviewer_id=alice, decision="approve")  # needs a second reviewer: not alice's
    assert c.next_to_review(mixed["percent"], run2, user_id=alice) == mixed["underscore"]
    assert c.next_to_review(mixed["duplicate"], run2, user_id=alice) == mixed["underscore"]
    assert c.next_to_review(mixed["duplicate"], run2, user_id=qworld.user_ids["bob"]) == mixed["graded"]
    assert c.queue_neighbours(10**6, run2, user_id=alice) == (None, None)


def _exact(world: ReviewWorld, item_id: int, user: str) -> tuple[int, bool]:
    item = world.catalogue.item(item_id)
    assert item is not None
    n, approvers = approvals_on_current_image(item, floor=world.catalogue.decision_floors([item_id]).get(item_id, 0))
    return n, world.user_ids[user] in approvers


def _row(world: ReviewWorld, item_id: int, user: str) -> tuple[int, bool]:
    row = next(r for r in world.catalogue.review_queue_page(QueueFilter(status="undecided"), user_id=world.user_ids[user],
                                                            limit=500).rows if r.id == item_id)
    return row.approvals, row.approved_by_me


def test_approvals_count_as_the_item_page_counts_them(qworld: ReviewWorld) -> None:
    w = qworld
    run = w.new_run()
    c, alice = w.catalogue, w.user_ids["alice"]
    graded = w.add_item(run, accession="G-1", grade="一级", required_approvals=2)
    c.record_decision(graded, reviewer_id=alice, decision="approve")
    assert _row(w, graded, "alice") == _exact(w, graded, "alice") == (1, True)
    assert _row(w, graded, "bob") == _exact(w, graded, "bob") == (1, False)
    w.add_item(run, accession="G-1", grade="一级", required_approvals=2)  # a new photograph joins the object
    assert _row(w, graded, "alice") == _exact(w, graded, "alice") == (0, False)  # alice did not see it
    assert ids(w, QueueFilter(approval="mine")) == []
    c.record_decision(graded, reviewer_id=alice, decision="approve")
    assert _row(w, graded, "alice") == (1, True)

    reopened = w.add_item(run, accession="R-1")
    c.record_decision(reopened, reviewer_id=alice, decision="approve")
    c.reopen_decision(reopened, admin_id=w.user_ids["adam"], reason="approved by mistake")
    assert _row(w, reopened, "alice") == _exact(w, reopened, "alice") == (0, False)


def test_unknown_filter_values_sorts_and_cursors_are_refused(qworld: ReviewWorld) -> None:
    for bad in ({"status": "approved"}, {"grade": "五级"}, {"compliance": "x"}, {"approval": "theirs"},
                {"run_id": 0}, {"run_id": 2**31}, {"search": "x" * 201}, {"search": "a\x00"}):
        with pytest.raises(QueueQueryInvalid) as caught:
            QueueFilter(**bad)  # type: ignore[arg-type]
        assert caught.value.code in ("status", "grade", "compliance", "approval", "run", "search")
    alice = qworld.user_ids["alice"]
    with pytest.raises(QueueQueryInvalid, match="sort"):
        qworld.catalogue.review_queue_page(sort="random", user_id=alice)
    for cursor in ("not base64!", encode_cursor(["a", 1]), encode_cursor([True]), encode_cursor([-1]), "x" * 700):
        with pytest.raises(QueueQueryInvalid) as caught:
            qworld.catalogue.review_queue_page(user_id=alice, after=cursor)
        assert caught.value.code == "cursor"
    assert decode_cursor(encode_cursor(["梅瓶", 3]), "accession") == ["梅瓶", 3]
    with pytest.raises(QueueQueryInvalid):
        qworld.catalogue.review_queue_page(user_id=alice, limit=0)


def _plans(catalogue: Catalogue, call: Any) -> list[str]:
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(catalogue.engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        event.remove(catalogue.engine, "before_cursor_execute", capture)
    plans = []
    with catalogue.engine.connect() as conn:
        for statement, parameters in statements:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            plans.append("\n".join(str(r[-1]) for r in rows))
    return plans


def test_first_page_and_neighbours_use_the_indexes(qworld: ReviewWorld, mixed: dict[str, int]) -> None:
    if qworld.catalogue.engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    c, alice = qworld.catalogue, qworld.user_ids["alice"]
    with c.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    c.queue_dialect()  # asked once, before the plans are captured
    page_plans = _plans(c, lambda: c.review_queue_page(user_id=alice))
    assert "SEARCH items USING" in page_plans[0] and "TEMP B-TREE FOR ORDER BY" not in page_plans[0].split("\n")[0]
    assert not any("SCAN items" in p for p in page_plans), page_plans
    run_plans = _plans(c, lambda: c.review_queue_page(QueueFilter(run_id=mixed["run2"]), user_id=alice))
    assert "ix_items_status_ingest_run_id" in run_plans[0]
    neighbour_plans = _plans(c, lambda: c.queue_neighbours(mixed["graded"], user_id=alice))
    assert len(neighbour_plans) == 3 and not any("SCAN items" in p or "TEMP B-TREE" in p for p in neighbour_plans), neighbour_plans


def test_totals_are_counted_up_to_a_limit_and_a_search_is_not_counted_past_its_page(qworld: ReviewWorld) -> None:
    run = qworld.new_run()
    for _ in range(12):
        qworld.add_item(run, title="青铜爵")
    c, alice = qworld.catalogue, qworld.user_ids["alice"]
    exact = c.review_queue_page(user_id=alice, limit=5, count_limit=20)
    assert (exact.total, exact.total_capped) == (12, False)
    capped = c.review_queue_page(user_id=alice, limit=5, count_limit=10)
    assert (capped.total, capped.total_capped) == (10, True)
    searched = c.review_queue_page(QueueFilter(search="青铜"), user_id=alice, limit=5)
    assert (searched.total, searched.total_capped) == (5, True)
    whole = c.review_queue_page(QueueFilter(search="青铜"), user_id=alice, limit=50)
    assert (whole.total, whole.total_capped) == (12, False)


def test_front_image_keys_name_the_thumbnail_without_loading_the_item(qworld: ReviewWorld, mixed: dict[str, int]) -> None:
    keys = qworld.catalogue.front_image_keys(mixed["plain"])
    item = qworld.catalogue.item(mixed["plain"])
    assert item is not None and keys is not None
    assert (keys.access_key, keys.thumbnail_key) == (item.current_images[0].access_key, item.current_images[0].thumbnail_key)
    assert keys.thumbnail_key is not None
    assert qworld.catalogue.front_image_keys(10**6) is None


# -- the search index (relicflow/catalogue/search_index.py) --------------------------------------------


def test_the_search_index_follows_corrections_new_files_and_deletions(qworld: ReviewWorld, mixed: dict[str, int]) -> None:
    c = qworld.catalogue
    assert ids(qworld, QueueFilter(search="Bronze Jue")) == [mixed["warned"], mixed["lookalike"]]
    with c.engine.begin() as conn:  # a corrected record (the triggers act on any UPDATE, whoever writes it)
        conn.execute(text("UPDATE items SET title = 'Bronze Gu', accession_number = 'MB-9002' WHERE id = :id"), {"id": mixed["warned"]})
    assert ids(qworld, QueueFilter(search="bronze jue")) == [mixed["lookalike"]]
    assert ids(qworld, QueueFilter(search="bronze gu")) == [mixed["warned"]]
    assert ids(qworld, QueueFilter(search="MB-9002")) == [mixed["warned"]] and ids(qworld, QueueFilter(search="MB-0002")) == []
    later = qworld.add_item(qworld.new_run(), accession="MB-0777", title="玉琮", file_name="Yu_Cong_left.TIF")
    assert ids(qworld, QueueFilter(search="cong_LEFT")) == [later]  # a file name arriving later, any case, _ literal
    with c.engine.begin() as conn:
        conn.execute(text("UPDATE source_files SET file_name = 'yu_cong_top.tif' WHERE item_id = :id"), {"id": later})
    assert ids(qworld, QueueFilter(search="cong_left")) == [] and ids(qworld, QueueFilter(search="cong_top")) == [later]
    with c.engine.begin() as conn:
        conn.execute(text("DELETE FROM items WHERE id = :id"), {"id": later})
    assert ids(qworld, QueueFilter(search="玉琮")) == [] and ids(qworld, QueueFilter(search="cong_top")) == []
    assert ids(qworld, QueueFilter(search='"mb')) == []  # a quote in the search is a character, not FTS5 syntax


def test_searches_of_three_characters_or_more_use_the_trigram_index(qworld: ReviewWorld, mixed: dict[str, int]) -> None:
    if qworld.catalogue.engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's (PostgreSQL's pg_trgm indexes serve the same ILIKE)")
    c, alice = qworld.catalogue, qworld.user_ids["alice"]
    assert c.queue_dialect() == "sqlite+trigram"
    indexed = _plans(c, lambda: c.review_queue_page(QueueFilter(search="梅瓶 4"), user_id=alice))[0]
    assert "VIRTUAL TABLE INDEX" in indexed and "SCAN source_files" not in indexed, indexed
    short = _plans(c, lambda: c.review_queue_page(QueueFilter(search="梅瓶"), user_id=alice))[0]
    assert "VIRTUAL TABLE" not in short  # two characters are not a trigram: LIKE over the items, as before
    assert ids(qworld, QueueFilter(search="梅瓶")) == [mixed[k] for k in ("plain", "graded", "percent", "underscore", "duplicate")]


def test_migrating_again_restores_triggers_a_table_rebuild_dropped(qworld: ReviewWorld, mixed: dict[str, int]) -> None:
    if qworld.catalogue.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's triggers")
    c = qworld.catalogue
    with c.engine.begin() as conn:  # what Alembic's batch mode does to a table's triggers when it rebuilds it
        conn.exec_driver_sql("DROP TRIGGER item_search_items_insert")
    c.migrate()
    later = qworld.add_item(qworld.new_run(), accession="MB-0888", title="Gilt bronze Buddha")
    assert ids(qworld, QueueFilter(search="gilt bronze")) == [later]
