"""Administrators are told, on every page, when the review record stops vouching for itself."""

from __future__ import annotations

from sqlalchemy import text

from tests.review_world import ReviewWorld, form_token  # noqa: F401 - fixtures come from conftest


def test_admins_see_a_banner_while_the_record_is_broken_and_reviewers_do_not(world: ReviewWorld) -> None:
    run = world.new_run()
    item_id = world.add_item(run)
    app = world.app(watch_record=True)
    watch = app.state.review.record_watch
    admin, reviewer = world.client(app), world.client(app)
    world.login(admin, "adam")
    world.login(reviewer, "alice")
    assert watch.check_now().ok
    assert "record-alert" not in admin.get("/").text

    with world.catalogue.engine.begin() as conn:  # someone approves by hand in the database
        conn.execute(text("UPDATE items SET status = 'approved' WHERE id = :i"), {"i": item_id})
    report = watch.check_now()
    assert not report.ok and report.disagreements[0].code == "status_not_recorded"
    page = admin.get("/")
    assert "record-alert" in page.text and f"item {item_id}" in page.text and "relicflow audit verify" in page.text
    assert "record-alert" not in reviewer.get("/").text


def test_the_watch_runs_on_start_up(world: ReviewWorld) -> None:
    app = world.app(watch_record=True)
    watch = app.state.review.record_watch
    with world.client(app):  # start-up starts the watch, which checks at once in its own thread
        assert watch.checked.wait(timeout=60)
    assert watch.last is not None and watch.last.ok
