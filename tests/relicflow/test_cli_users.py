"""`relicflow users list | disable | enable | reset-password | end-sessions` and `init --demo`, run in-process
with typer's CliRunner against a real data dir, while the real review app (in-process ASGI client) holds
sessions in the same SQLite catalogue: a reset or a disable must end them at once."""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2 for its TestClient; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from relicflow.catalogue import Catalogue
from relicflow.cli import app
from relicflow.passwords import hash_password
from relicflow.settings import load_settings
from relicflow.storage import LocalStore
from review_ui import create_review_app

runner = CliRunner()
# CliRunner's stdin is no terminal, so click's hidden prompt warns that it cannot turn echo off
pytestmark = pytest.mark.filterwarnings("ignore::getpass.GetPassWarning")
PASSWORD = "correct-horse-battery"
PER_INVOCATION_ENV = {key: None for key in ("PREFECT_HOME", "PREFECT_API_URL", "RELICFLOW_DATA_DIR", "RELICFLOW_LOCALE")}


@pytest.fixture(autouse=True)
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("RELICFLOW_"):
            monkeypatch.delenv(key)
    for key in ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_LOGGING_LEVEL", "RELICFLOW_DATA_DIR", "RELICFLOW_LOCALE"):
        monkeypatch.setenv(key, "x")
        monkeypatch.delenv(key)
    monkeypatch.setenv("RELICFLOW_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("LOGNAME", "operator-li")  # getpass.getuser() reads LOGNAME first
    monkeypatch.chdir(tmp_path)


def cli(data_dir: Path, *args: str, lang: str | None = "en", input: str | None = None) -> Result:
    argv = ["--data-dir", str(data_dir), *(["--lang", lang] if lang else []), *args]
    return runner.invoke(app, argv, catch_exceptions=False, env=PER_INVOCATION_ENV, input=input)


def flat(text: str) -> str:
    return " ".join(text.split())


class Site:
    """A data dir with users, and the real review app over its catalogue."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.settings = load_settings(data_dir=data_dir)
        self.catalogue = Catalogue.from_settings(self.settings)
        self.catalogue.migrate()
        self.app = create_review_app(self.settings, self.catalogue, LocalStore(data_dir / "objects"))

    def signed_in(self, username: str, password: str = PASSWORD) -> TestClient:
        client = TestClient(self.app, follow_redirects=False)
        assert sign_in(client, username, password) == 303
        assert client.get("/").status_code == 200
        return client

    def audit(self, action: str) -> list[tuple[str, dict[str, object]]]:
        return [(e.actor, e.details) for e in self.catalogue.audit_entries() if e.action == action]


def sign_in(client: TestClient, username: str, password: str) -> int:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
    assert token
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token.group(1)}).status_code


def sent_to_sign_in(client: TestClient) -> bool:
    r = client.get("/")
    return r.status_code == 303 and r.headers["location"].startswith("/login")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    data_dir = tmp_path / "data"
    assert cli(data_dir, "init").exit_code == 0
    s = Site(data_dir)
    hashed = hash_password(PASSWORD)
    s.catalogue.add_user("wang", hashed, "reviewer", display_name="王审核")
    s.catalogue.add_user("zhao", hashed, "digitiser")
    yield s
    s.catalogue.dispose()


def test_list_shows_role_status_sessions_and_last_sign_in(site: Site) -> None:
    site.signed_in("wang"), site.signed_in("wang")
    cli(site.data_dir, "users", "disable", "zhao")
    result = cli(site.data_dir, "users", "list")
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
             for line in result.output.splitlines() if line.startswith("│")}
    assert lines["admin"] == ["admin", "administrator", "active", "0", "not recorded"]
    assert lines["zhao"] == ["zhao", "digitisation staff", "disabled", "0", "not recorded"]
    assert lines["wang"][:4] == ["王审核", "reviewer", "active", "2"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC\+08:00", lines["wang"][4])  # Asia/Shanghai, the default zone
    rows = {r["username"]: r for r in json.loads(cli(site.data_dir, "users", "list", "--json").stdout)}
    assert (rows["wang"]["sessions"], rows["zhao"]["active"], rows["admin"]["last_sign_in"]) == (2, False, None)
    assert cli(site.data_dir, "users", "add", "qian", "--role", "reviewer").exit_code == 0
    assert [a for a, d in site.audit("user:add") if d["username"] in ("admin", "qian")] == ["cli:operator-li"] * 2
    chinese = cli(site.data_dir, "users", "list", lang=None)
    assert "最近登录" in chinese.output and "UTC+08:00" in chinese.output and "已停用" in chinese.output and "审核员" in chinese.output


def test_reset_password_from_the_prompt_ends_a_live_session(site: Site) -> None:
    browser = site.signed_in("wang")
    other = site.signed_in("zhao")
    new = "jade-bi-disc-2026"
    result = cli(site.data_dir, "users", "reset-password", "wang", input=f"{new}\n{new}\n")
    assert result.exit_code == 0, result.output
    assert "New password set for wang; their 1 session(s) ended." in flat(result.output)
    assert new not in result.output  # typed without echo
    assert sent_to_sign_in(browser)  # the old cookie now gets the sign-in page
    assert not sent_to_sign_in(other)  # nobody else is signed out
    assert sign_in(TestClient(site.app, follow_redirects=False), "wang", PASSWORD) == 400
    site.signed_in("wang", new)
    assert site.audit("user:password") == [("cli:operator-li", {"username": "wang", "sessions_ended": 1})]


def test_reset_password_refuses_a_mismatch_a_short_one_and_an_empty_stdin(site: Site) -> None:
    browser = site.signed_in("wang")
    cases = [(["reset-password", "wang"], "jade-bi-disc-2026\njade-bi-disc-2027\n", "The two passwords differ; nothing was changed."),
             (["reset-password", "wang", "--password-stdin"], "short\n", "needs at least 10 characters; nothing was changed."),
             (["reset-password", "wang", "--password-stdin"], "", "there was none; nothing was changed.")]
    for args, typed, message in cases:
        result = cli(site.data_dir, "users", *args, input=typed)
        assert result.exit_code == 2 and message in flat(result.output), result.output
    assert not sent_to_sign_in(browser)
    assert site.audit("user:password") == []
    chinese = cli(site.data_dir, "users", "reset-password", "wang", "--password-stdin", input="short\n", lang=None)
    assert "密码太短：至少需要 10 个字符，密码未修改。" in chinese.output


def test_reset_password_from_stdin_with_a_named_operator(site: Site) -> None:
    browser = site.signed_in("zhao")
    result = cli(site.data_dir, "users", "reset-password", "zhao", "--password-stdin", "--actor", "curator-wu",
                 input="a-password-from-a-vault\n")
    assert result.exit_code == 0, result.output
    assert sent_to_sign_in(browser)
    site.signed_in("zhao", "a-password-from-a-vault")
    assert site.audit("user:password") == [("cli:curator-wu", {"username": "zhao", "sessions_ended": 1})]


def test_disable_ends_sessions_and_blocks_sign_in_until_enabled(site: Site) -> None:
    browser = site.signed_in("wang")
    result = cli(site.data_dir, "users", "disable", "wang")
    assert result.exit_code == 0 and "Disabled wang and ended their 1 session(s)" in flat(result.output)
    assert sent_to_sign_in(browser)
    assert sign_in(TestClient(site.app, follow_redirects=False), "wang", PASSWORD) == 400
    enabled = cli(site.data_dir, "users", "enable", "wang", "--actor", "curator-wu")
    assert enabled.exit_code == 0 and "Enabled wang; they can sign in again." in flat(enabled.output)
    assert "was active already" in flat(cli(site.data_dir, "users", "enable", "wang").output)
    site.signed_in("wang")
    assert site.audit("user:disable") == [("cli:operator-li", {"username": "wang", "was_active": True, "sessions_ended": 1})]
    assert [actor for actor, _ in site.audit("user:enable")] == ["cli:curator-wu", "cli:operator-li"]
    assert site.catalogue.verify_audit_chain() is None


def test_end_sessions_signs_a_user_out_everywhere(site: Site) -> None:
    first, second = site.signed_in("wang"), site.signed_in("wang")
    result = cli(site.data_dir, "users", "end-sessions", "wang", lang=None)
    assert result.exit_code == 0 and "已结束用户 wang 的 2 个登录会话，需重新登录。" in flat(result.output)
    assert sent_to_sign_in(first) and sent_to_sign_in(second)
    site.signed_in("wang")  # the account itself still works
    assert site.audit("user:end-sessions") == [("cli:operator-li", {"username": "wang", "sessions_ended": 2})]


@pytest.mark.parametrize("command", ["disable", "enable", "end-sessions", "reset-password"])
def test_unknown_user_exits_1_and_changes_nothing(site: Site, command: str) -> None:
    before = len(site.catalogue.audit_entries())
    result = cli(site.data_dir, "users", command, "nobody", input="x" * 12 + "\n" + "x" * 12 + "\n")
    assert result.exit_code == 1
    assert "There is no user named nobody. relicflow users list shows every user." in flat(result.output)
    assert "password" not in result.output.lower()  # asked nothing before finding out
    assert len(site.catalogue.audit_entries()) == before
    assert "没有名为 nobody 的用户" in cli(site.data_dir, "users", command, "nobody", lang=None).output


def test_init_demo_again_keeps_the_demo_reviewers_login_and_sessions(tmp_path: Path) -> None:
    """`make demo` a second time neither changes the demo reviewer's password nor signs them out."""
    data_dir = tmp_path / "data"
    first = cli(data_dir, "init", "--demo")
    password = re.search(r"Created the demo reviewer: user reviewer password \(shown once\) (\S+)", flat(first.output))
    assert first.exit_code == 0 and password, first.output
    site = Site(data_dir)
    try:
        browser = site.signed_in("reviewer", password.group(1))
        second = cli(data_dir, "init", "--demo")
        assert second.exit_code == 0, second.output
        assert "The demo reviewer reviewer exists already and keeps its password" in flat(second.output)
        assert password.group(1) not in second.output
        assert not sent_to_sign_in(browser)  # the live session goes on
        site.signed_in("reviewer", password.group(1))  # and the printed password still works
        assert site.audit("user:password") == []
    finally:
        site.catalogue.dispose()
