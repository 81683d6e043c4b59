"""The `relicflow` command, run in-process with typer's CliRunner against real data dirs: a real SQLite
catalogue, real flows on the session's Prefect test server, and the sandbox issuer over real HTTP."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from PIL import Image as PILImage
from sqlalchemy import text
from typer.testing import CliRunner

from relicflow.background_server import serve_in_background
from relicflow.catalogue import Catalogue, ItemStatus
from relicflow.catalogue.ingested import IngestedImage
from relicflow.cli import app
from relicflow.passwords import verify_password
from relicflow.sandbox_issuer import create_sandbox_app
from relicflow.settings import Settings

runner = CliRunner()

# What the CLI may write into os.environ (prefect_environment and the --data-dir/--lang callback).
CLI_ENV_KEYS = ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_LOGGING_LEVEL", "PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK",
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "RELICFLOW_DATA_DIR", "RELICFLOW_LOCALE")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the shell leaks in and nothing the CLI sets in os.environ leaks out of the test."""
    for key in list(os.environ):
        if key.startswith("RELICFLOW_"):
            monkeypatch.delenv(key)
    for key in CLI_ENV_KEYS:  # set-then-delete: monkeypatch restores the original value (or absence) afterwards
        monkeypatch.setenv(key, "x")
        monkeypatch.delenv(key)
    monkeypatch.setenv("RELICFLOW_CONFIG", str(tmp_path / "absent.toml"))
    # no `relicflow serve` Prefect server on the default port may capture these runs
    monkeypatch.setenv("RELICFLOW_PREFECT_PORT", str(free_port()))
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at the terminal width; keep lines whole
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An installation with an empty catalogue (what `relicflow init` makes, without users): commands other
    than init refuse to run where there is none."""
    path = tmp_path / "data"
    catalogue_of(path).dispose()
    return path


# Unset for each invocation and restored after it: the callback exports --data-dir/--lang for child
# processes, which in-process would carry one invocation's --lang into the next.
PER_INVOCATION_ENV = {key: None for key in ("PREFECT_HOME", "PREFECT_API_URL", "RELICFLOW_DATA_DIR", "RELICFLOW_LOCALE")}


def cli(data_dir: Path, *args: str, lang: str | None = "en") -> Result:
    argv = ["--data-dir", str(data_dir), *(["--lang", lang] if lang else []), *args]
    return runner.invoke(app, argv, catch_exceptions=False, env=PER_INVOCATION_ENV)


def flat(text: str) -> str:
    return " ".join(text.split())


def catalogue_of(data_dir: Path) -> Catalogue:
    catalogue = Catalogue(f"sqlite:///{data_dir.resolve() / 'catalogue.sqlite3'}")
    catalogue.migrate()
    return catalogue


def stored_hash(data_dir: Path, username: str) -> str:
    catalogue = catalogue_of(data_dir)
    try:
        user = catalogue.user_by_name(username)
        assert user is not None, f"no user {username}"
        return user.password_hash
    finally:
        catalogue.dispose()


# -- init -----------------------------------------------------------------------------------------


def test_init_creates_the_data_dir_and_prints_the_admin_password_once(data_dir: Path) -> None:
    first = cli(data_dir, "init")
    assert first.exit_code == 0, first.output
    assert data_dir.is_dir() and (data_dir / "inbox").is_dir() and (data_dir / "catalogue.sqlite3").is_file()
    match = re.search(r"Created administrator admin; password \(shown once\): (\S+)", flat(first.output))
    assert match, first.output
    password = match.group(1)
    assert verify_password(password, stored_hash(data_dir, "admin"))
    assert not verify_password(password + "x", stored_hash(data_dir, "admin"))

    second = cli(data_dir, "init")
    assert second.exit_code == 0, second.output
    assert "Users exist already; no administrator created." in flat(second.output)
    assert "password" not in second.output.lower() and password not in second.output
    catalogue = catalogue_of(data_dir)
    try:
        assert catalogue.count_users() == 1
        assert catalogue.user_by_name("admin").role == "admin"  # type: ignore[union-attr]
    finally:
        catalogue.dispose()
    assert verify_password(password, stored_hash(data_dir, "admin"))  # unchanged by the second init


def test_init_speaks_chinese_by_default(data_dir: Path) -> None:
    result = cli(data_dir, "init", "--admin", "馆长", lang=None)
    assert result.exit_code == 0, result.output
    match = re.search(r"已创建管理员 馆长，密码（仅显示一次）：(\S+)", flat(result.output))
    assert match, result.output
    assert verify_password(match.group(1), stored_hash(data_dir, "馆长"))


def test_init_demo_fills_the_inbox_and_prints_a_working_reviewer_login(data_dir: Path) -> None:
    result = cli(data_dir, "init", "--demo")
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    written = re.search(r"Sample scans and accession sheet: (\d+) files put in the inbox", out)
    assert written, result.output
    inbox_files = sorted(p for p in (data_dir / "inbox").iterdir() if p.is_file())
    assert len(inbox_files) == int(written.group(1)) > 0
    assert any(p.suffix == ".csv" for p in inbox_files)
    login = re.search(r"Created the demo reviewer: user reviewer password \(shown once\) (\S+)", out)
    assert login, result.output
    assert verify_password(login.group(1), stored_hash(data_dir, "reviewer"))
    # and a senior reviewer, so the demo's graded (一级) sample can get its second approval
    senior = re.search(r"Created the demo senior reviewer \(the second approval a graded relic needs\): user senior "
                       r"password \(shown once\) (\S+)", out)
    assert senior, result.output
    assert verify_password(senior.group(1), stored_hash(data_dir, "senior"))
    catalogue = catalogue_of(data_dir)
    try:
        assert catalogue.user_by_name("reviewer").role == "reviewer"  # type: ignore[union-attr]
        assert catalogue.user_by_name("senior").role == "senior_reviewer"  # type: ignore[union-attr]
    finally:
        catalogue.dispose()
    again = flat(cli(data_dir, "init", "--demo").output)
    assert "The demo reviewer senior exists already and keeps its password" in again and "Created" not in again


def test_invalid_language_is_refused_naming_the_setting(tmp_path: Path) -> None:
    data_dir = tmp_path / "new"  # not an installation yet: init refuses before creating anything
    result = cli(data_dir, "init", lang="fr")
    assert result.exit_code == 2
    assert "locale must be 'zh-CN' or 'en'" in flat(result.output)
    assert "[type=value_error" in result.output  # pydantic's detail is shown as it is, not read as markup
    assert not data_dir.exists()


# -- users ----------------------------------------------------------------------------------------


def test_users_add_prints_a_working_password(data_dir: Path) -> None:
    result = cli(data_dir, "users", "add", "wang", "--role", "reviewer", "--display-name", "王审核")
    assert result.exit_code == 0, result.output
    match = re.search(r"Added user wang \(reviewer\); password \(shown once\): (\S+)", flat(result.output))
    assert match, result.output
    assert verify_password(match.group(1), stored_hash(data_dir, "wang"))
    catalogue = catalogue_of(data_dir)
    try:
        user = catalogue.user_by_name("wang")
        assert user is not None and (user.role, user.display_name) == ("reviewer", "王审核")
    finally:
        catalogue.dispose()


@pytest.mark.parametrize("role", ["senior_reviewer", "auditor"])
def test_users_add_takes_the_new_roles(data_dir: Path, role: str) -> None:
    result = cli(data_dir, "users", "add", "qian", "--role", role)
    assert result.exit_code == 0, result.output
    catalogue = catalogue_of(data_dir)
    try:
        user = catalogue.user_by_name("qian")
        assert user is not None and user.role == role
    finally:
        catalogue.dispose()
    listed = cli(data_dir, "users", "list")
    assert {"senior_reviewer": "senior reviewer", "auditor": "auditor"}[role] in listed.output


def test_users_add_with_unknown_role_exits_2_listing_the_roles(data_dir: Path) -> None:
    result = cli(data_dir, "users", "add", "wang", "--role", "curator")
    assert result.exit_code == 2
    assert "Role must be one of: digitiser, reviewer, senior_reviewer, admin, auditor" in flat(result.output)
    assert "password" not in result.output.lower()
    if (data_dir / "catalogue.sqlite3").exists():
        catalogue = catalogue_of(data_dir)
        try:
            assert catalogue.count_users() == 0
        finally:
            catalogue.dispose()


def test_users_add_twice_exits_1_with_a_clear_message(data_dir: Path) -> None:
    assert cli(data_dir, "users", "add", "wang", "--role", "reviewer").exit_code == 0
    first_hash = stored_hash(data_dir, "wang")
    again = cli(data_dir, "users", "add", "wang", "--role", "admin")
    assert again.exit_code == 1
    assert "Error: user 'wang' already exists" in flat(again.output)
    assert "password" not in again.output.lower()
    assert stored_hash(data_dir, "wang") == first_hash
    catalogue = catalogue_of(data_dir)
    try:
        assert catalogue.user_by_name("wang").role == "reviewer"  # type: ignore[union-attr]
    finally:
        catalogue.dispose()


# -- items ----------------------------------------------------------------------------------------


def _jpeg(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> Path:
    img = PILImage.new("RGB", size, colour)
    img.paste(tuple(255 - c for c in colour), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    img.save(path, "JPEG", quality=90)
    return path


@pytest.fixture
def listed(data_dir: Path) -> dict[str, int]:
    """Three items made through the catalogue API in the CLI's data dir: one awaiting review (its file name
    has brackets, as Windows copies do), one quarantined, one approved."""
    catalogue = catalogue_of(data_dir)
    ids: dict[str, int] = {}
    try:
        reviewer = catalogue.add_user("wang", "not-a-real-hash", "reviewer")
        for n, (key, name) in enumerate([("awaiting", "vase [copy].jpg"), ("quarantined", "empty.jpg"), ("approved", "GJ-7.jpg")]):
            sha = hashlib.sha256(name.encode()).hexdigest()
            item_id, _ = catalogue.register_received(sha256=sha, file_name=name, inbox_path=f"/inbox/{name}", size_bytes=10 + n,
                                                     ingest_run_id=None)
            ids[key] = item_id
            if key == "quarantined":
                catalogue.quarantine(item_id, code="empty_file", message_en="The file is empty (0 bytes).", message_zh="文件为空（0 字节）。")
                continue
            catalogue.record_ingested(item_id, IngestedImage(
                sha256=sha, size_bytes=10, format="JPEG", width=32, height=24, mode="RGB", bits_per_sample=8,
                original_key=f"originals/{sha[:2]}/{sha}", access_key="a", thumbnail_key="t", derivation=[], hashes={},
                technical={}, warnings=[], accession_number=f"ACC-{n}", accession_number_source="sheet", title="青釉碗",
                sheet_fields={"accession_number": f"ACC-{n}", "title": "青釉碗"}))
            if key == "approved":
                catalogue.record_decision(item_id, reviewer_id=reviewer, decision="approve")
    finally:
        catalogue.dispose()
    return ids


def test_items_json_lists_every_item(data_dir: Path, listed: dict[str, int]) -> None:
    result = cli(data_dir, "items", "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert sorted(r["id"] for r in records) == sorted(listed.values())
    by_id = {r["id"]: r for r in records}
    assert by_id[listed["awaiting"]]["status"] == "awaiting_review"
    assert by_id[listed["awaiting"]]["original_file_names"] == ["vase [copy].jpg"]
    assert by_id[listed["quarantined"]]["quarantine"]["code"] == "empty_file"
    assert by_id[listed["approved"]]["status"] == "approved" and by_id[listed["approved"]]["decisions"][0]["reviewer"] == "wang"

    only = cli(data_dir, "items", "--status", "quarantined", "--json")
    assert only.exit_code == 0 and [r["id"] for r in json.loads(only.stdout)] == [listed["quarantined"]]


def test_items_json_of_an_empty_catalogue_is_an_empty_list(data_dir: Path) -> None:
    result = cli(data_dir, "items", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_items_with_unknown_status_exits_2(data_dir: Path) -> None:
    result = cli(data_dir, "items", "--status", "bogus")
    assert result.exit_code == 2
    out = flat(result.output)
    assert "--status 'bogus' is not an item status. Use one of:" in out and "awaiting_review (待审核)" in out


def test_items_table_follows_the_language(data_dir: Path, listed: dict[str, int]) -> None:
    en = cli(data_dir, "items")
    zh = cli(data_dir, "items", lang=None)
    assert en.exit_code == 0 and zh.exit_code == 0
    for word in ("Status", "awaiting review", "quarantined", "approved", "The file is empty (0 bytes)."):
        assert word in en.output and word not in zh.output, word
    for word in ("状态", "待审核", "已隔离", "已通过", "文件为空（0 字节）。"):
        assert word in zh.output and word not in en.output, word
    # user data is shown as it is, never read as console markup
    assert "vase [copy].jpg" in en.output and "vase [copy].jpg" in zh.output

    none = cli(data_dir, "items", "--status", "minted")
    assert none.exit_code == 0 and "No items match." in none.output


def test_items_show_why_the_mint_holds_an_item(data_dir: Path, listed: dict[str, int]) -> None:
    """An item set to approved by hand, with no approval: the mint holds it, and `items` says so in both languages."""
    catalogue = catalogue_of(data_dir)
    try:
        with catalogue.engine.begin() as conn:
            conn.execute(text("UPDATE items SET status = 'approved' WHERE id = :id"), {"id": listed["awaiting"]})
        assessment = catalogue.assess_for_mint()
        assert [(i, h.code) for i, h in assessment.held] == [(listed["awaiting"], "approvals_missing")]
        assert [i for i, _ in assessment.eligible] == [listed["approved"]]
    finally:
        catalogue.dispose()
    by_id = {r["id"]: r for r in json.loads(cli(data_dir, "items", "--json").stdout)}
    hold = by_id[listed["awaiting"]]["mint_hold"]
    assert hold["code"] == "approvals_missing" and hold["message_en"] and hold["message_zh"] and hold["since"]
    assert by_id[listed["approved"]]["mint_hold"] is None
    en, zh = flat(cli(data_dir, "items").output), flat(cli(data_dir, "items", lang=None).output)
    assert "held back from minting (approvals_missing): The item is marked approved, but no approval" in en
    assert "暂缓发行（approvals_missing）：该藏品被标为“已通过”，但没有针对当前图像的审核通过记录" in zh


# -- ingest (runs the real flow on the Prefect test server) ---------------------------------------


@pytest.fixture
def scans(tmp_path: Path) -> tuple[Path, Path]:
    """An inbox with two good JPEGs and one empty file, and an accession sheet naming the two good ones."""
    inbox = tmp_path / "studio [drop]"
    inbox.mkdir()
    _jpeg(inbox / "GJ-0001.jpg", (180, 40, 40))
    _jpeg(inbox / "GJ-0002.jpg", (40, 90, 200), (300, 400))
    (inbox / "empty.jpg").write_bytes(b"")
    sheet = tmp_path / "accession.csv"
    with sheet.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["总登记号", "藏品名称", "类别", "年代", "材质", "级别", "文件名"])
        w.writerow(["GJ-0001", "青釉碗", "瓷器", "宋", "瓷", "三级", "GJ-0001.jpg"])
        w.writerow(["GJ-0002", "铜镜", "铜器", "唐", "铜", "二级", "GJ-0002.jpg"])
    return inbox, sheet


@pytest.mark.usefixtures("prefect_server")
def test_ingest_summarises_and_a_second_run_adds_nothing(data_dir: Path, scans: tuple[Path, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELICFLOW_INBOX_SETTLE_S", "0")  # the files were written a moment ago
    inbox, sheet = scans
    first = cli(data_dir, "ingest", str(inbox), "--sheet", str(sheet))
    assert first.exit_code == 0, first.output
    assert ("Ingest done: 3 files, 3 new, 2 awaiting review, 1 quarantined, 0 failed, 0 already known, 0 skipped, 0 errors"
            in flat(first.output)), first.output
    catalogue = catalogue_of(data_dir)
    try:
        by_number = {i.accession_number: i for i in catalogue.items()}
        assert set(by_number) == {"GJ-0001", "GJ-0002", None}
        assert by_number["GJ-0002"].title == "铜镜" and by_number["GJ-0002"].status == "awaiting_review"
        assert by_number[None].status == "quarantined" and by_number[None].quarantine_code == "empty_file"
    finally:
        catalogue.dispose()

    second = cli(data_dir, "ingest", str(inbox), "--sheet", str(sheet))
    assert second.exit_code == 0, second.output
    assert ("Ingest done: 3 files, 0 new, 0 awaiting review, 0 quarantined, 0 failed, 3 already known, 0 skipped, 0 errors"
            in flat(second.output)), second.output

    # the back of GJ-0001 arrives: it joins the object, and the summary says so in words
    _jpeg(inbox / "GJ-0001_背面.jpg", (30, 160, 60))
    third = cli(data_dir, "ingest", str(inbox), "--sheet", str(sheet))
    assert "1 photographs joined objects already in the catalogue" in flat(third.output), third.output
    catalogue = catalogue_of(data_dir)
    try:
        ding = next(i for i in catalogue.items(status="awaiting_review") if i.accession_number == "GJ-0001")
        assert sorted(i.view or "" for i in ding.images) == ["", "back"]
    finally:
        catalogue.dispose()


@pytest.mark.usefixtures("prefect_server")
def test_ingest_leaves_files_still_being_copied_for_later_and_says_so(data_dir: Path, scans: tuple[Path, Path]) -> None:
    """The CLI settles like the schedule does: a file changed moments ago may be half copied."""
    inbox, _ = scans
    (inbox / "big.tif.part").write_bytes(b"II*\x00")
    result = cli(data_dir, "ingest", str(inbox))  # default inbox_settle_s: 10 s
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "0 new" in out and "4 skipped" in out
    assert "GJ-0001.jpg: changed moments ago, probably still being copied; taken on a later run" in out
    assert "big.tif.part: still downloading or copying (temporary name)" in out
    zh = flat(cli(data_dir, "ingest", str(inbox), lang=None).output)
    assert "刚刚有变化，可能仍在拷贝，下次运行处理" in zh
    catalogue = catalogue_of(data_dir)
    try:
        assert catalogue.items() == []  # nothing registered: a half copy never becomes an item
    finally:
        catalogue.dispose()


@pytest.mark.usefixtures("prefect_server")
def test_retry_after_raising_a_limit_processes_a_quarantined_item(data_dir: Path, scans: tuple[Path, Path],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELICFLOW_INBOX_SETTLE_S", "0")
    monkeypatch.setenv("RELICFLOW_MAX_IMAGE_PIXELS", "100000")  # GJ-0002 (300 x 400) is over it
    inbox, sheet = scans
    assert cli(data_dir, "ingest", str(inbox), "--sheet", str(sheet)).exit_code == 0
    catalogue = catalogue_of(data_dir)
    try:
        big = next(i for i in catalogue.items(status="quarantined") if i.quarantine_code == "decompression_bomb")
        (good,) = catalogue.items(status="awaiting_review")
        result = cli(data_dir, "retry", str(big.id), str(good.id), "999")
        assert result.exit_code == 1
        out = flat(result.output)
        assert f"#{big.id} will be processed again by the next ingest run." in out
        assert f"#{good.id} does not exist or is not failed or quarantined" in out and "#999 does not exist" in out
        assert catalogue.item_status(big.id).value == "received"
        monkeypatch.delenv("RELICFLOW_MAX_IMAGE_PIXELS")  # the administrator raised the limit
        again = cli(data_dir, "ingest", str(inbox), "--sheet", str(sheet))
        assert again.exit_code == 0, again.output
        assert catalogue.item_status(big.id).value == "awaiting_review"
        actions = [e.action for e in catalogue.audit_entries(item_id=big.id)]
        assert actions[-5:] == ["status:quarantined", "status:received", "ingest:adopt", "status:processed", "status:awaiting_review"]
    finally:
        catalogue.dispose()


@pytest.mark.parametrize("name", ["no-such-inbox", "[archive] scans"])
def test_ingest_of_a_missing_inbox_exits_1_naming_it(data_dir: Path, tmp_path: Path, name: str) -> None:
    missing = tmp_path / name
    result = cli(data_dir, "ingest", str(missing))
    assert result.exit_code == 1
    assert f"Inbox not found: {missing}" in flat(result.output)


# -- mint (the real flow against the sandbox issuer over HTTP) ------------------------------------


@pytest.fixture
def issuer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    defaults = Settings(data_dir=tmp_path / "unused")
    app_ = create_sandbox_app(ledger_path=tmp_path / "issuer" / "ledger.sqlite3",
                              api_key=defaults.issuer_api_key.get_secret_value(),
                              secret=defaults.issuer_secret.get_secret_value().encode())
    with serve_in_background(app_) as url:
        monkeypatch.setenv("RELICFLOW_ISSUER_URL", url)
        yield url


@pytest.mark.usefixtures("prefect_server")
def test_mint_sends_approved_items_once_then_has_nothing_to_mint(data_dir: Path, listed: dict[str, int], issuer: str) -> None:
    from relicflow.issuer_client import IssuerClient
    from relicflow.settings import load_settings

    result = cli(data_dir, "mint")
    assert result.exit_code == 0, result.output
    assert "Mint done: 1 tokens in 1 batch(es), 0 failed" in flat(result.output)
    catalogue = catalogue_of(data_dir)
    try:
        assert catalogue.item_status(listed["approved"]) is ItemStatus.minted
        assert catalogue.item_status(listed["awaiting"]) is ItemStatus.awaiting_review
    finally:
        catalogue.dispose()
    with IssuerClient.from_settings(load_settings(data_dir=data_dir, issuer_url=issuer)) as client:
        assert [t.item_ref for t in client.list_tokens()] == [f"relicflow:item:{listed['approved']}"]

    again = cli(data_dir, "mint")  # nothing approved any more: nothing is sent
    assert again.exit_code == 0, again.output
    assert "Mint done: 0 tokens in 0 batch(es), 0 failed" in flat(again.output)
    with IssuerClient.from_settings(load_settings(data_dir=data_dir, issuer_url=issuer)) as client:
        assert len(client.list_tokens()) == 1


@pytest.mark.usefixtures("prefect_server")
def test_mint_says_how_many_items_it_held_back(data_dir: Path, listed: dict[str, int], issuer: str) -> None:
    catalogue = catalogue_of(data_dir)
    try:
        with catalogue.engine.begin() as conn:  # approved by hand, with no approval: held, the other is minted
            conn.execute(text("UPDATE items SET status = 'approved' WHERE id = :id"), {"id": listed["awaiting"]})
    finally:
        catalogue.dispose()
    result = cli(data_dir, "mint")
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "Mint done: 1 tokens in 1 batch(es), 0 failed" in out
    assert "1 item(s) held back from minting; `relicflow items --status approved` says why" in out


def test_items_table_shows_the_reviewers_note_on_sent_back_items(data_dir: Path, listed: dict[str, int]) -> None:
    catalogue = catalogue_of(data_dir)
    try:
        reviewer = catalogue.user_by_name("wang")
        assert reviewer is not None
        catalogue.record_decision(listed["awaiting"], reviewer_id=reviewer.id, decision="send_back", reason="底部阴影过重，请补光重拍")
    finally:
        catalogue.dispose()
    result = cli(data_dir, "items", "--status", "sent_back")
    assert result.exit_code == 0, result.output
    flat = "".join(ch for line in result.output.splitlines() for ch in line if ch not in "│ ")  # the table wraps cells
    assert "wang:底部阴影过重，请补光重拍" in flat
