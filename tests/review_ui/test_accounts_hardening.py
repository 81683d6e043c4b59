"""Sign-in that does not reveal which accounts exist, accounts that can be disabled and whose password
change ends their sessions, the missing security headers, and ids past the database's integer range;
against a real catalogue and the real review app (in-process ASGI client)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import pytest
from review_world import PASSWORD, USERS, ReviewWorld, form_token
from starlette.convertors import IntegerConvertor
from starlette.routing import Route
from starlette.testclient import TestClient

from relicflow.catalogue.models import AuditEntry
from relicflow.errors import UnknownUser
from relicflow.i18n import t
from relicflow.passwords import hash_password
from review_ui.routes import router
from review_ui.sessions import SessionStore
from review_ui.web import DatabaseIdConvertor

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; "
       "form-action 'self'; base-uri 'none'")


def post_login(client: TestClient, username: str, password: str) -> object:
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": form_token(page.text)})


def comparable(html: str, username: str) -> str:
    """A login page with what legitimately differs between two attempts taken out: the typed name and
    the per-form CSRF token."""
    html = html.replace(f'value="{username}"', 'value="NAME"')
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value="TOKEN"', html)


def failures(world: ReviewWorld) -> list[AuditEntry]:
    return [e for e in world.catalogue.audit_entries() if e.action == "auth:login-failed"]


# -- throttling that does not tell which names exist ----------------------------------------------------


def test_unknown_and_known_names_are_throttled_alike(world: ReviewWorld) -> None:
    world.settings = world.settings.model_copy(update={"login_max_failures": 3})
    transcripts: dict[str, list[tuple[int, str]]] = {}
    for name in ("alice", "mallory"):  # alice exists, mallory does not
        client = world.client()
        transcripts[name] = [(r.status_code, comparable(r.text, name))  # type: ignore[attr-defined]
                             for r in (post_login(client, name, f"guess-{n}") for n in range(5))]
    assert [status for status, _ in transcripts["alice"]] == [400, 400, 400, 429, 429]
    assert transcripts["alice"] == transcripts["mallory"]  # same statuses, byte-identical pages
    assert t("web.login.throttled", "zh-CN", minutes=15) in transcripts["mallory"][3][1]
    # the typed name is counted under a keyed hash: a password typed into the name field is not stored
    keys = {e.details["name_key"] for e in failures(world)}
    assert len(keys) == 2 and all(re.fullmatch(r"[0-9a-f]{64}", k) for k in keys)
    assert "mallory" not in str([e.details for e in world.catalogue.audit_entries()])
    # another name from the same address is not paused (3 x limit per address not reached: 6 failures)
    assert post_login(world.client(), "bob", PASSWORD).status_code == 303


def test_a_pause_on_an_unknown_name_survives_a_new_app(world: ReviewWorld) -> None:
    """The hash key lives in the data dir: a restarted app counts the same name under the same key."""
    world.settings = world.settings.model_copy(update={"login_max_failures": 2})
    for _ in range(2):
        assert post_login(world.client(), "mallory", "guess").status_code == 400
    assert post_login(world.client(world.app()), "mallory", "guess").status_code == 429


# -- disabled accounts and ended sessions ---------------------------------------------------------------


def test_disabled_user_cannot_sign_in_and_gets_the_wrong_password_message(world: ReviewWorld,
                                                                            signed_in: Callable[[str], TestClient]) -> None:
    live = signed_in("alice")
    assert live.get("/").status_code == 200
    ended = world.catalogue.disable_user("alice", actor="cli:root")
    assert ended == 1
    r = live.get("/")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    disabled = post_login(world.client(), "alice", PASSWORD)  # the right password
    wrong = post_login(world.client(), "bob", "wrong-password")
    assert disabled.status_code == wrong.status_code == 400  # type: ignore[attr-defined]
    assert comparable(disabled.text, "alice") == comparable(wrong.text, "bob")  # type: ignore[attr-defined]
    assert failures(world)[0].details["reason"] == "disabled"
    world.catalogue.enable_user("alice", actor="cli:root")
    assert post_login(world.client(), "alice", PASSWORD).status_code == 303
    account = [(e.actor, e.action, e.details) for e in world.catalogue.audit_entries() if e.action.startswith("user:")]
    assert account[-2:] == [("cli:root", "user:disable", {"username": "alice", "was_active": True, "sessions_ended": 1}),
                            ("cli:root", "user:enable", {"username": "alice", "was_active": False})]


def test_password_change_ends_every_session_of_that_user_only(world: ReviewWorld,
                                                              signed_in: Callable[[str], TestClient]) -> None:
    first, second, other = signed_in("alice"), signed_in("alice"), signed_in("bob")
    ended = world.catalogue.set_password("alice", hash_password("a-new-long-password"), actor="cli:root")
    assert ended == 2
    for client in (first, second):
        r = client.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
    assert other.get("/").status_code == 200
    assert post_login(world.client(), "alice", PASSWORD).status_code == 400
    assert post_login(world.client(), "alice", "a-new-long-password").status_code == 303
    entry = [e for e in world.catalogue.audit_entries() if e.action == "user:password"][-1]
    assert (entry.actor, entry.details) == ("cli:root", {"username": "alice", "sessions_ended": 2})


def test_account_listing_counts_live_sessions_and_last_sign_in(world: ReviewWorld,
                                                               signed_in: Callable[[str], TestClient]) -> None:
    signed_in("alice"), signed_in("alice"), signed_in("bob")
    world.catalogue.end_sessions("bob", actor="cli:root")
    rows = {a.username: a for a in world.catalogue.accounts()}
    assert sorted(rows) == sorted(USERS)
    assert (rows["alice"].sessions, rows["bob"].sessions, rows["dora"].sessions) == (2, 0, 0)
    assert rows["alice"].last_sign_in is not None and rows["dora"].last_sign_in is None
    assert rows["adam"].role == "admin" and rows["adam"].active
    with pytest.raises(UnknownUser):
        world.catalogue.end_sessions("nobody", actor="cli:root")
    assert world.catalogue.verify_audit_chain() is None


# -- headers --------------------------------------------------------------------------------------------


def test_security_headers_include_permissions_policy_and_csp_form_action(world: ReviewWorld,
                                                                         signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("alice")
    for r in (client.get("/"), client.get("/login"), client.get("/nope"), client.get("/static/review.css")):
        assert r.headers["content-security-policy"] == CSP
        policy = r.headers["permissions-policy"]
        for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"):
            assert feature in policy
        assert "strict-transport-security" not in r.headers  # plain http: HSTS would be ignored or wrong


def test_hsts_only_over_https(world: ReviewWorld) -> None:
    secure = world.client(base_url="https://review.example")
    for r in (secure.get("/login"), secure.get("/nope"), secure.get("/healthz")):
        assert r.headers["strict-transport-security"] == "max-age=31536000"
    assert "strict-transport-security" not in world.client().get("/login").headers


# -- ids past the integer range -------------------------------------------------------------------------


@pytest.mark.parametrize("item_id", [str(2**31), str(2**63), "99999999999999999999", "0" * 30 + "2147483648"])
def test_out_of_range_ids_are_not_found_without_a_traceback(world: ReviewWorld, signed_in: Callable[[str], TestClient],
                                                            caplog: pytest.LogCaptureFixture, item_id: str) -> None:
    client = signed_in("adam")
    csrf = form_token(client.get("/").text)
    caplog.set_level(logging.DEBUG)
    responses = [client.get(f"/items/{item_id}"), client.get(f"/items/{item_id}/image/access"),
                 client.post(f"/items/{item_id}/decision", data={"decision": "approve", "csrf_token": csrf}),
                 client.post(f"/items/{item_id}/retry", data={"csrf_token": csrf})]
    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    assert t("web.error.not_found", "zh-CN") in responses[0].text  # the normal not-found page
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


def test_the_largest_in_range_id_still_reaches_the_route(world: ReviewWorld, signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("alice")
    item_id = world.add_item(world.new_run())
    assert client.get(f"/items/{item_id}").status_code == 200
    assert client.get(f"/items/{2**31 - 1}").status_code == 404  # routed, looked up, not there
    assert client.get(f"/items/{item_id:05d}").status_code == 200  # leading zeros are the same id


def test_every_id_in_a_route_path_uses_the_bounded_convertor() -> None:
    routes = [r for r in router.routes if isinstance(r, Route)]
    with_ids = [r for r in routes if any(name.endswith("_id") for name in r.param_convertors)]
    assert len(with_ids) == 6  # the item page, its first image, any of its photographs, its decision, its retry and its reopen
    for route in routes:
        for name, convertor in route.param_convertors.items():
            assert not isinstance(convertor, IntegerConvertor), f"{route.path}: use {{{name}:dbid}}"
            if name.endswith("_id"):
                assert isinstance(convertor, DatabaseIdConvertor), route.path


def test_the_id_convertor_matches_exactly_zero_to_the_postgresql_integer_limit() -> None:
    pattern = re.compile(DatabaseIdConvertor.regex)
    edges = [0, 9, 10, 999_999_999, 1_000_000_000, 1_999_999_999, 2_000_000_000, 2_147_483_639, 2_147_483_640,
             2**31 - 1, 2**31, 2_147_483_650, 2_147_483_700, 2_200_000_000, 3_000_000_000, 9_999_999_999, 10**10, 2**63]
    numbers = edges + [n + d for n in range(0, 2**33, 2**33 // 997) for d in (0, 1)]
    for n in numbers:
        assert bool(pattern.fullmatch(str(n))) == (n <= 2**31 - 1), n
    for text in ("", "-1", "+1", "1.0", "1e3", "０１"):  # signs, decimals and full-width digits never match
        assert not pattern.fullmatch(text)


def test_a_sign_in_checked_before_a_password_change_or_disable_gets_no_session(world: ReviewWorld) -> None:
    """The gap between checking the password and starting the session: a reset or disable in between wins."""
    sessions = SessionStore(world.catalogue)
    checked = world.catalogue.account("alice")
    assert checked is not None
    world.catalogue.set_password("alice", hash_password("a-new-long-password"), actor="cli:root")
    assert sessions.start(checked.id, password_hash=checked.password_hash) is None
    bob = world.catalogue.account("bob")
    assert bob is not None
    world.catalogue.disable_user("bob", actor="cli:root")
    assert sessions.start(bob.id, password_hash=bob.password_hash) is None
    dora = world.catalogue.account("dora")
    assert dora is not None and sessions.start(dora.id, password_hash=dora.password_hash) is not None
