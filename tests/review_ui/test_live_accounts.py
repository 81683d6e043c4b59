"""The review app served by uvicorn on loopback, as `relicflow review` serves it (``SERVER_OPTIONS``), over
real HTTP: whose X-Forwarded-For and X-Forwarded-Proto count, a password reset and a disable made by the
real `relicflow` CLI in another process ending a live session, and out-of-range ids."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from review_world import PASSWORD, ReviewWorld

from relicflow.background_server import serve_in_background
from relicflow.catalogue import Catalogue
from relicflow.passwords import hash_password
from relicflow.settings import load_settings
from relicflow.storage import LocalStore
from review_ui import create_review_app
from review_ui.app import SERVER_OPTIONS

pytestmark = pytest.mark.slow


@contextmanager
def live(world: ReviewWorld, **settings: object) -> Iterator[str]:
    world.settings = load_settings(**{**world.settings.model_dump(), **settings})  # validated, as from the TOML file
    app = create_review_app(world.settings, world.catalogue, world.store)
    with serve_in_background(app, **SERVER_OPTIONS) as url:
        yield url


def sign_in(client: httpx.Client, username: str, password: str, headers: dict[str, str] | None = None) -> httpx.Response:
    page = client.get("/login", headers=headers)
    token = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
    assert token
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token.group(1)},
                       headers=headers)


def failed_from(world: ReviewWorld) -> list[str]:
    return [e.details["ip"] for e in world.catalogue.audit_entries() if e.action == "auth:login-failed"]


def test_forwarded_for_from_an_untrusted_peer_is_ignored(world: ReviewWorld) -> None:
    with live(world, login_max_failures=1) as url, httpx.Client(base_url=url, follow_redirects=False) as client:
        for n in range(3):  # a new forged address and a new name every time: still one address (3 x limit)
            forged = {"X-Forwarded-For": f"203.0.113.{n}", "X-Forwarded-Proto": "https"}
            r = sign_in(client, f"user{n}", "guess", headers=forged)
            assert r.status_code == 400
            assert "strict-transport-security" not in r.headers  # the forged https is ignored too
        assert sign_in(client, "bob", PASSWORD, headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 429
    assert failed_from(world) == ["127.0.0.1"] * 3


def test_forwarded_for_from_a_trusted_proxy_is_honoured(world: ReviewWorld) -> None:
    with live(world, login_max_failures=1, trusted_proxies=["127.0.0.0/8"]) as url, \
            httpx.Client(base_url=url, follow_redirects=False) as client:
        for n in range(3):  # three different clients behind the proxy, one failure each: nobody paused
            assert sign_in(client, f"user{n}", "guess", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code == 400
        # the proxy appends the peer it saw: a client-supplied first entry is not believed
        assert sign_in(client, "alice", PASSWORD, headers={"X-Forwarded-For": "10.9.9.9, 198.51.100.7"}).status_code == 303
        # https ended at the proxy: HSTS, and cookies the browser only sends back over https
        r = httpx.get(f"{url}/login", headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"})
        assert r.headers["strict-transport-security"] == "max-age=31536000"
        assert "Secure" in r.headers["set-cookie"]
        assert "strict-transport-security" not in client.get("/login").headers  # plain http via the proxy
    assert failed_from(world) == ["203.0.113.0", "203.0.113.1", "203.0.113.2"]
    login = [e for e in world.catalogue.audit_entries() if e.action == "auth:login"][-1]
    assert login.details["ip"] == "198.51.100.7"


def test_a_proxy_outside_the_trusted_networks_is_not_believed(world: ReviewWorld) -> None:
    with live(world, trusted_proxies=["10.0.0.0/8"]) as url, httpx.Client(base_url=url, follow_redirects=False) as client:
        r = sign_in(client, "alice", "guess", headers={"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"})
        assert r.status_code == 400 and "strict-transport-security" not in r.headers
    assert failed_from(world) == ["127.0.0.1"]


def run_cli(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELICFLOW_")}
    env.update(RELICFLOW_DATA_DIR=str(data_dir), RELICFLOW_LOCALE="en", LOGNAME="operator-li", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "relicflow.cli", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def test_cli_reset_and_disable_end_a_live_session(tmp_path: Path, settings: object) -> None:
    data_dir = tmp_path / "site"
    site = load_settings(data_dir=data_dir)
    catalogue = Catalogue.from_settings(site)
    catalogue.migrate()
    catalogue.add_user("wang", hash_password(PASSWORD), "reviewer")
    app = create_review_app(site, catalogue, LocalStore(data_dir / "objects"))
    try:
        with serve_in_background(app, **SERVER_OPTIONS) as url, httpx.Client(base_url=url, follow_redirects=False) as browser:
            assert sign_in(browser, "wang", PASSWORD).status_code == 303
            assert browser.get("/").status_code == 200
            reset = run_cli(data_dir, "users", "reset-password", "wang", "--password-stdin", stdin="jade-bi-disc-2026\n")
            assert reset.returncode == 0, reset.stdout + reset.stderr
            assert "their 1 session(s) ended" in reset.stdout
            r = browser.get("/")
            assert r.status_code == 303 and r.headers["location"] == "/login?next=/"

            assert sign_in(browser, "wang", "jade-bi-disc-2026").status_code == 303
            assert browser.get("/").status_code == 200
            disabled = run_cli(data_dir, "users", "disable", "wang")
            assert disabled.returncode == 0, disabled.stdout + disabled.stderr
            r = browser.get("/")
            assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
            assert sign_in(browser, "wang", "jade-bi-disc-2026").status_code == 400
        listing = run_cli(data_dir, "users", "list")
        assert re.search(r"│ wang\s+│ wang\s+│ reviewer\s+│ disabled\s+│ 0\s+│ \d{4}-", listing.stdout), listing.stdout
        actors = [(e.actor, e.action) for e in catalogue.audit_entries() if e.action.startswith("user:")]
        assert actors[-2:] == [("cli:operator-li", "user:password"), ("cli:operator-li", "user:disable")]
    finally:
        catalogue.dispose()


def test_out_of_range_ids_over_http_are_404_without_a_traceback(world: ReviewWorld, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with live(world) as url, httpx.Client(base_url=url, follow_redirects=False) as client:
        assert sign_in(client, "alice", PASSWORD).status_code == 303
        for path in (f"/items/{2**63}", "/items/99999999999999999999"):
            r = client.get(path)
            assert r.status_code == 404 and "text/html" in r.headers["content-type"], path
        assert client.get(f"/items/{2**31}/image/access").status_code == 404
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
