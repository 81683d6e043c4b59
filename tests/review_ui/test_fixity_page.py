"""The administrators' storage fixity page: who may see it, and what it says about the last checks."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from relicflow.catalogue import StoredObjectRef
from relicflow.catalogue.fixity import FixityResult
from review_world import ReviewWorld


def seed(world: ReviewWorld) -> int:
    """An item as ingest stores it, in the inventory, with its original changed and its thumbnail gone."""
    item_id = world.add_item(world.new_run())
    item = world.catalogue.item(item_id)
    assert item is not None
    image = item.images[-1]
    world.catalogue.register_stored_objects([
        StoredObjectRef.of(world.store.head(image.original_key), role="original", item_id=item_id),  # type: ignore[arg-type]
        StoredObjectRef.of(world.store.head(image.access_key), role="access", item_id=item_id),  # type: ignore[arg-type]
        StoredObjectRef(image.thumbnail_key or "", None, None, "thumbnail", item_id),
    ])
    world.catalogue.record_fixity_results([
        FixityResult(image.original_key, "changed", "registered sha256 aaa; the stored bytes hash to bbb (10 bytes)"),
        FixityResult(image.access_key or "", "ok"),
        FixityResult(image.thumbnail_key or "", "missing", "no object under this key"),
    ])
    world.catalogue.record_fixity_run({"checked": 3, "temporaries_removed": 2})
    return item_id


def test_only_administrators_see_the_page_and_its_link(world: ReviewWorld, signed_in: Callable[[str], TestClient]) -> None:
    anonymous = world.client()
    r = anonymous.get("/admin/fixity")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/admin/fixity")
    for name in ("alice", "dora"):
        client = signed_in(name)
        assert 'href="/admin/fixity"' not in client.get("/").text
        denied = client.get("/admin/fixity?lang=en")
        assert denied.status_code == 403 and "You are not allowed to do this." in denied.text
    admin = signed_in("adam")
    assert 'href="/admin/fixity"' in admin.get("/").text
    page = admin.get("/admin/fixity?lang=en")
    assert page.status_code == 200 and "No fixity check has run yet." in page.text


def test_the_page_shows_the_last_run_the_counts_and_each_problem(world: ReviewWorld, signed_in: Callable[[str], TestClient]) -> None:
    item_id = seed(world)
    admin = signed_in("adam")
    en = admin.get("/admin/fixity?lang=en").text
    assert "Last run:" in en and "3 objects checked, 2 stale temporary files removed" in en
    assert 'data-outcome="ok">intact <strong>1</strong>' in en
    assert 'data-outcome="changed">changed <strong>1</strong>' in en and 'data-outcome="missing">missing <strong>1</strong>' in en
    assert en.count("<tr data-outcome=") == 2
    assert "the file is damaged or was altered" in en and "The store no longer holds this object." in en
    assert "registered sha256 aaa; the stored bytes hash to bbb (10 bytes)" in en
    assert f'href="/items/{item_id}"' in en and "original" in en and "thumbnail" in en
    assert 'aria-current="page">Storage fixity' in en
    zh = admin.get("/admin/fixity?lang=zh-CN").text
    assert "存储完整性检查" in zh and "内容已改变" in zh and "缺失" in zh and "缩略图" in zh and "存储中已没有此对象" in zh


def test_a_run_that_could_not_finish_is_shown_as_such(world: ReviewWorld, signed_in: Callable[[str], TestClient]) -> None:
    world.catalogue.record_fixity_run({"checked": 0, "error": "Stopped checking s3://museum: the store looks unreachable"})
    page = signed_in("adam").get("/admin/fixity?lang=en").text
    assert '<p class="error" id="last-run">' in page and "did not finish: Stopped checking s3://museum" in page
    assert "No object had a problem at its last check." in page
