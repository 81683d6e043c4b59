"""Sessions end on the server after the idle timeout and after their absolute lifetime (settings), and the
user's language is kept with the user. Time is moved, never slept: the session store's clock is injected,
or the session row's timestamps are set back in the database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from review_world import PASSWORD, ReviewWorld, form_token
from sqlalchemy import select, update
from starlette.testclient import TestClient

from relicflow.catalogue.models import User, WebSession
from relicflow.i18n import t
from review_ui.sessions import SessionStore

IDLE = timedelta(minutes=30)
MAX_AGE = timedelta(hours=12)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 1, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def clocked_client(world: ReviewWorld) -> tuple[TestClient, Clock]:
    clock = Clock()
    sessions = SessionStore(world.catalogue, max_age=MAX_AGE, idle_timeout=IDLE, clock=clock)
    return world.client(world.app(sessions=sessions)), clock


def rows(world: ReviewWorld) -> list[WebSession]:
    with world.catalogue.read_session() as s:
        return list(s.scalars(select(WebSession)))


def test_an_idle_session_ends_and_the_sign_in_page_says_so_and_comes_back(world: ReviewWorld) -> None:
    item_id = world.add_item(world.new_run())
    client, clock = clocked_client(world)
    world.login(client, "alice")
    clock.now += IDLE - timedelta(seconds=1)
    assert client.get(f"/items/{item_id}").status_code == 200  # just inside: still signed in
    clock.now += IDLE - timedelta(seconds=1)  # idle again for almost as long: the request above counted
    assert client.get("/").status_code == 200
    clock.now += IDLE
    r = client.get(f"/items/{item_id}?lang=en")
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=/items/{item_id}%3Flang%3Den&expired=1"
    assert rows(world) == []  # ended on the server, not only forgotten by the browser
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and t("web.login.expired", "en") in page.text
    back = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": form_token(page.text),
                                       "next": f"/items/{item_id}"})
    assert back.status_code == 303 and back.headers["location"] == f"/items/{item_id}"


def test_a_busy_session_still_ends_at_its_absolute_lifetime(world: ReviewWorld) -> None:
    client, clock = clocked_client(world)
    world.login(client, "alice")
    start = clock.now
    while clock.now - start < MAX_AGE - IDLE:
        clock.now += IDLE / 2
        assert client.get("/").status_code == 200
    clock.now = start + MAX_AGE
    r = client.get("/")
    assert r.status_code == 303 and r.headers["location"].endswith("&expired=1")
    assert rows(world) == []


def test_a_form_posted_after_the_timeout_asks_to_sign_in_and_records_nothing(world: ReviewWorld) -> None:
    item_id = world.add_item(world.new_run())
    client, clock = clocked_client(world)
    world.login(client, "alice")
    token = form_token(client.get(f"/items/{item_id}").text)
    clock.now += IDLE + timedelta(seconds=1)
    r = client.post(f"/items/{item_id}/decision", data={"decision": "approve", "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=/items/{item_id}&expired=1"
    assert world.catalogue.approvals_for(item_id) == []


def test_the_settings_decide_the_timeouts(world: ReviewWorld) -> None:
    """The app built from settings (no injected store) enforces them; time moved by setting the row back."""
    world.settings.session_idle_timeout_s = 600
    world.settings.session_max_age_s = 3600
    client = world.client()
    world.login(client, "alice")
    cookie = next(c for c in client.cookies.jar if c.name == "relicflow_session")
    assert cookie.expires is not None  # the cookie lives no longer than the session may
    [row] = rows(world)
    assert row.expires_at - row.created_at == timedelta(seconds=3600)
    with world.catalogue.session() as s:
        s.execute(update(WebSession).values(last_seen_at=row.last_seen_at - timedelta(seconds=599)))
    assert client.get("/").status_code == 200
    with world.catalogue.session() as s:
        s.execute(update(WebSession).values(last_seen_at=row.last_seen_at - timedelta(seconds=601)))
    r = client.get("/")
    assert r.status_code == 303 and "expired=1" in r.headers["location"]

    world.login(client, "alice")  # a session from before 0012 (no last_seen_at) is idle since it began
    [row] = rows(world)
    with world.catalogue.session() as s:
        s.execute(update(WebSession).values(last_seen_at=None, created_at=row.created_at - timedelta(seconds=601)))
    assert client.get("/").status_code == 303


def test_signing_out_is_not_called_expiry(world: ReviewWorld) -> None:
    client = world.client()
    world.login(client, "alice")
    with world.catalogue.session() as s:
        s.execute(update(User).where(User.username == "alice").values(active=False))
    r = client.get("/")
    assert r.status_code == 303 and "expired" not in r.headers["location"]  # disabled, not timed out


def user_locale(world: ReviewWorld, name: str) -> str | None:
    with world.catalogue.read_session() as s:
        return s.scalar(select(User.locale).where(User.username == name))


def test_the_language_is_kept_with_the_user_and_follows_them_to_another_browser(world: ReviewWorld) -> None:
    english_browser = {"accept-language": "en-GB,en;q=0.9"}
    chinese_browser = {"accept-language": "zh-CN,zh;q=0.9"}
    first = world.client(headers=english_browser)
    assert t("web.login.title", "en") in first.get("/login").text  # before sign-in: the browser decides
    world.login(first, "alice")
    assert user_locale(world, "alice") is None
    assert '<html lang="en">' in first.get("/").text  # nothing chosen yet: still the browser's
    assert '<html lang="zh-CN">' in first.get("/?lang=zh-CN").text  # the language switch, signed in
    assert user_locale(world, "alice") == "zh-CN"

    elsewhere = world.client(headers=english_browser)  # another computer, an English browser, lang cookie en
    elsewhere.cookies.set("lang", "en")
    assert '<html lang="en">' in elsewhere.get("/login").text
    world.login(elsewhere, "alice")
    assert '<html lang="zh-CN">' in elsewhere.get("/").text  # signed in: the user's language, not the browser's
    assert '<html lang="en">' in elsewhere.get("/quarantine?lang=en").text
    assert user_locale(world, "alice") == "en"
    assert '<html lang="en">' in first.get("/").text  # the first browser follows the user too

    other = world.client(headers=chinese_browser)
    world.login(other, "bob")  # someone else's choice is theirs alone
    assert '<html lang="zh-CN">' in other.get("/").text and user_locale(world, "bob") is None
