"""What staff meet in their first week on the command line (issue 7): `make demo` run twice, help in their
language, status names in either language, notes in words, token ids, times in their zone.

Real SQLite catalogues in temporary data dirs; the CLI runs in-process with typer's CliRunner on the real
app, and as the installed `relicflow` console script for help.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import typer
from click.testing import Result
from sqlalchemy import text
from typer.testing import CliRunner

from relicflow.catalogue import Catalogue, ItemStatus
from relicflow.catalogue.accounts import SIGN_IN_ACTION
from relicflow.catalogue.ingested import IngestedImage, WarningNote
from relicflow.cli import app
from relicflow.cli_help import early_locale, help_keys
from relicflow.cli_items import shorten, status_from_name
from relicflow.cli_time import local_times_in
from relicflow.errors import BadCommandInput
from relicflow.i18n import catalogue, message, t
from relicflow.samples.generate import demo_batch

runner = CliRunner()
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No RELICFLOW_* setting from the shell, no relicflow.toml, no Prefect server of a running `serve`."""
    for key in list(os.environ):
        if key.startswith("RELICFLOW_"):
            monkeypatch.delenv(key)
    for key in ("PREFECT_HOME", "PREFECT_API_URL"):
        monkeypatch.setenv(key, "x")
        monkeypatch.delenv(key)
    monkeypatch.setenv("RELICFLOW_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("RELICFLOW_PREFECT_PORT", "9")  # nothing listens there: no stranger's server is used
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def cli(data_dir: Path, *args: str, lang: str | None = "en", env: dict[str, str | None] | None = None) -> Result:
    argv = ["--data-dir", str(data_dir), *(["--lang", lang] if lang else []), *args]
    per_call: dict[str, str | None] = {"RELICFLOW_DATA_DIR": None, "RELICFLOW_LOCALE": None, "PREFECT_HOME": None, **(env or {})}
    return runner.invoke(app, argv, catch_exceptions=False, env=per_call)


def flat(output: str) -> str:
    return " ".join(output.split())


def unboxed(output: str) -> str:
    """Table text with borders and spaces removed, so wrapped cells read as one string."""
    return "".join(ch for ch in output if ch not in "│┃ \n")


def catalogue_of(data_dir: Path) -> Catalogue:
    catalogue = Catalogue(f"sqlite:///{data_dir.resolve() / 'catalogue.sqlite3'}")
    catalogue.migrate()
    return catalogue


# -- make demo, twice -----------------------------------------------------------------------------


def test_demo_again_never_overwrites_an_inbox_file_and_keeps_the_reviewers_password(data_dir: Path) -> None:
    first = cli(data_dir, "init", "--demo")
    assert first.exit_code == 0, first.output
    login = re.search(r"Created the demo reviewer: user reviewer password \(shown once\) (\S+)", flat(first.output))
    assert login, first.output
    catalogue = catalogue_of(data_dir)
    try:
        hash_before = catalogue.user_by_name("reviewer").password_hash  # type: ignore[union-attr]
    finally:
        catalogue.dispose()

    inbox = data_dir / "inbox"
    staff_scan = inbox / "2003.9.5_front.jpg"  # staff dropped their own scan under a sample's name
    staff_scan.write_bytes(b"the museum's own scan, not the sample")
    (inbox / "2011.6.21_front.png").unlink()  # and ingest (or someone) took another sample away
    samples = demo_batch()

    second = cli(data_dir, "init", "--demo")
    assert second.exit_code == 0, second.output
    out = flat(second.output)
    assert f"Sample scans and accession sheet: 1 files put in the inbox {inbox}, {len(samples) - 2} already there" in out
    assert "1 files in the inbox have a sample's name but other contents; they were left alone and these samples skipped: 2003.9.5_front.jpg" in out
    assert staff_scan.read_bytes() == b"the museum's own scan, not the sample"
    assert (inbox / "2011.6.21_front.png").read_bytes() == samples["2011.6.21_front.png"]
    assert "The demo reviewer reviewer exists already and keeps its password" in out
    assert login.group(1) not in second.output and "shown once" not in out
    catalogue = catalogue_of(data_dir)
    try:
        assert catalogue.user_by_name("reviewer").password_hash == hash_before  # type: ignore[union-attr]
    finally:
        catalogue.dispose()

    zh = cli(data_dir, "init", "--demo", lang=None)
    assert zh.exit_code == 0, zh.output
    assert "0 个文件已放入收件箱" in flat(zh.output) and "演示审核员 reviewer 已存在，保留其原有密码" in flat(zh.output)


def test_demo_says_when_the_kept_reviewer_is_disabled(data_dir: Path) -> None:
    assert cli(data_dir, "init", "--demo").exit_code == 0
    assert cli(data_dir, "users", "disable", "reviewer").exit_code == 0
    again = cli(data_dir, "init", "--demo")
    assert "The demo reviewer reviewer is disabled; to use it: relicflow users enable reviewer" in flat(again.output)
    catalogue = catalogue_of(data_dir)
    try:
        assert catalogue.account("reviewer").active is False  # type: ignore[union-attr]  # an administrator's choice stands
    finally:
        catalogue.dispose()


# -- help in the chosen language ------------------------------------------------------------------


def console_script(*args: str, env: dict[str, str]) -> str:
    script = Path(sys.executable).with_name("relicflow")
    base = {k: v for k, v in os.environ.items() if not k.startswith("RELICFLOW_")}
    done = subprocess.run([str(script), *args], env={**base, "COLUMNS": "200", **env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_help_of_the_installed_command_follows_the_configured_language(tmp_path: Path) -> None:
    no_toml = {"RELICFLOW_CONFIG": str(tmp_path / "absent.toml")}
    zh_root, zh_items = console_script("--help", env=no_toml), console_script("items", "--help", env=no_toml)
    assert "列出目录中的藏品，包括被隔离的文件。" in zh_root and "命令" in zh_root and "选项" in zh_root
    assert "显示本帮助并退出。" in zh_root
    assert "只列出此状态的藏品" in zh_items and "List catalogue items" not in zh_items

    en_env = {**no_toml, "RELICFLOW_LOCALE": "en"}
    en_root, en_items = console_script("--help", env=en_env), console_script("items", "--help", env=en_env)
    assert "List catalogue items, quarantined files included." in en_root
    assert "Only items in this status" in en_items
    assert not CJK.search(en_root.replace("待审核", "").replace("已隔离", "")), en_root  # English only (examples aside)

    toml = tmp_path / "etc" / "relicflow.toml"
    toml.parent.mkdir()
    toml.write_text('locale = "en"\n')
    assert "Every user: role" in console_script("users", "list", "--help", env={"RELICFLOW_CONFIG": str(toml)})
    # --lang on the command line wins over the environment, as it does for every other output
    assert "列出所有用户" in console_script("--lang", "zh-CN", "users", "list", "--help", env=en_env)


def test_every_command_and_option_has_chinese_help_and_no_key_is_orphaned() -> None:
    english = help_keys(typer.main.get_command(app))
    missing = [key for key in english if message(key, "zh-CN") is None]
    assert not missing, f"add Chinese help to relicflow/locale/zh_CN/LC_MESSAGES/relicflow.po for: {missing}"
    ids = {entry.id for entry in catalogue("zh-CN") if entry.id}
    orphaned = [key for key in ids if key.startswith(("cli.help.cmd.", "cli.help.opt.")) and key not in english]
    assert not orphaned, f"no such command or option any more: {orphaned}"


def test_the_help_language_is_known_before_the_settings_are_loaded(tmp_path: Path) -> None:
    toml = tmp_path / "etc" / "relicflow.toml"
    toml.parent.mkdir()
    toml.write_text('locale = "en"\n')
    assert early_locale([], {}) == "zh-CN"  # no relicflow.toml in the working directory
    assert early_locale(["items", "--help"], {"RELICFLOW_CONFIG": str(toml)}) == "en"
    assert early_locale([], {"RELICFLOW_LOCALE": "zh-CN", "RELICFLOW_CONFIG": str(toml)}) == "zh-CN"
    assert early_locale(["--lang=en", "items"], {"RELICFLOW_LOCALE": "zh-CN"}) == "en"
    assert early_locale(["--lang", "fr"], {}) == "zh-CN"  # the settings refuse it later, with a message


# -- items: status names, notes in words, tokens, times -------------------------------------------


def _ingested(sha: str, n: int, *, warnings: list[WarningNote] | None = None, phash: str = "0" * 16) -> IngestedImage:
    return IngestedImage(
        sha256=sha, size_bytes=10, format="JPEG", width=32, height=24, mode="RGB", bits_per_sample=8,
        original_key=f"originals/{sha}", access_key="a", thumbnail_key="t", derivation=[], hashes={"phash": phash},
        technical={}, warnings=warnings or [], accession_number=f"ACC-{n}", accession_number_source="sheet", title="青釉碗",
        sheet_fields={"accession_number": f"ACC-{n}", "title": "青釉碗"})


BLUR = WarningNote("blurry", "The image looks out of focus (sharpness 12, expected at least 100); check it and rescan if the detail is soft.",
                   "图像疑似失焦（清晰度 12，应不低于 100）；请检查，如细节模糊请重新拍摄。")


@pytest.fixture
def catalogued(data_dir: Path) -> dict[str, int]:
    """Four items: two copies of one photograph (a warning on the second), one quarantined, one minted."""
    catalogue = catalogue_of(data_dir)
    ids: dict[str, int] = {}
    try:
        reviewer = catalogue.add_user("wang", "not-a-real-hash", "reviewer")
        for n, key in enumerate(["first", "copy", "quarantined", "minted"]):
            sha = hashlib.sha256(key.encode()).hexdigest()
            ids[key], _ = catalogue.register_received(sha256=sha, file_name=f"{key}.jpg", inbox_path=f"/inbox/{key}.jpg",
                                                      size_bytes=10, ingest_run_id=None)
            if key == "quarantined":
                catalogue.quarantine(ids[key], code="empty_file", message_en="The file is empty (0 bytes).", message_zh="文件为空（0 字节）。")
                continue
            same_photo = key in ("first", "copy")
            catalogue.record_ingested(ids[key], _ingested(sha, n, warnings=[BLUR] if key == "copy" else [],
                                                          phash="0" * 16 if same_photo else "f" * 16),
                                      match=lambda h, others: [(i, 0) for i, v in others if v == h])
        catalogue.record_decision(ids["minted"], reviewer_id=reviewer, decision="approve")
        batch_id = catalogue.create_mint_batch(item_ids=[ids["minted"]], batch_ref="RF-20261122-0001", idempotency_key="k-1",
                                               request_body={"items": [ids["minted"]]}, request_sha256="0" * 64)
        catalogue.record_mint_receipt(batch_id, chain="sandbox-chain", tokens=[(ids["minted"], "token-7f3a", "0xabc123")], raw={})
        with catalogue.engine.begin() as conn:  # a known moment: 23:30 UTC is 07:30 the next day in Beijing
            conn.execute(text("UPDATE items SET updated_at = '2026-11-21 23:30:00.000000'"))
    finally:
        catalogue.dispose()
    return ids


@pytest.mark.parametrize("status", list(ItemStatus))
def test_every_status_is_known_by_its_chinese_and_english_names(status: ItemStatus) -> None:
    assert status_from_name(status.value) is status
    assert status_from_name(t(f"web.status.{status.value}", "zh-CN")) is status
    assert status_from_name(t(f"web.status.{status.value}", "en").upper()) is status
    assert status_from_name(status.value.replace("_", "-")) is status


def test_an_unknown_status_name_lists_the_valid_ones_in_both_languages(data_dir: Path) -> None:
    with pytest.raises(BadCommandInput) as caught:
        status_from_name("已审核")
    assert caught.value.code == "unknown_status"
    assert "awaiting_review (待审核)" in caught.value.message_en and "待审核（awaiting_review）" in caught.value.message_zh
    data_dir.mkdir(parents=True)
    catalogue_of(data_dir).dispose()  # an installation: commands refuse to run outside one
    zh = cli(data_dir, "items", "--status", "已审核", lang=None)
    assert zh.exit_code == 2
    assert "“已审核” 不是藏品状态。可用的状态：已接收（received）、已隔离（quarantined）" in flat(zh.output)


def test_items_takes_status_names_in_chinese(data_dir: Path, catalogued: dict[str, int]) -> None:
    for name, expected in (("已隔离", ["quarantined"]), ("待审核", ["first", "copy"]), ("awaiting review", ["first", "copy"]),
                           ("已发行", ["minted"]), ("已退回", [])):
        result = cli(data_dir, "items", "--status", name, "--json")
        assert result.exit_code == 0, result.output
        assert sorted(r["id"] for r in json.loads(result.stdout)) == sorted(catalogued[k] for k in expected), name


def test_items_says_warnings_and_duplicates_in_words_and_keeps_codes_in_json(data_dir: Path, catalogued: dict[str, int]) -> None:
    first, copy = catalogued["first"], catalogued["copy"]
    en, zh = cli(data_dir, "items"), cli(data_dir, "items", lang=None)
    assert en.exit_code == 0 and zh.exit_code == 0
    assert "≈#" not in en.output and "(d=" not in en.output
    assert f"nearduplicateof#{first}(distance0:thesamephotograph)" in unboxed(en.output)
    assert f"近似重复：#{copy}（距离0，同一张照片）" in unboxed(zh.output)
    assert "warningblurry:Theimagelooksoutoffocus" in unboxed(en.output)
    assert "质量提示blurry：图像疑似失焦" in unboxed(zh.output)
    assert "expected at least 100" not in flat(en.output)  # the long message is cut short in the table…
    records = {r["id"]: r for r in json.loads(cli(data_dir, "items", "--json").stdout)}
    assert records[copy]["warnings"][0]["code"] == "blurry" and records[copy]["warnings"][0]["message_en"] == BLUR.message_en
    assert records[copy]["duplicate_candidates"] == [{"item_id": first, "algorithm": "phash", "distance": 0}]  # …and whole in JSON


def test_items_json_and_table_show_token_chain_and_batch(data_dir: Path, catalogued: dict[str, int]) -> None:
    records = {r["id"]: r for r in json.loads(cli(data_dir, "items", "--json").stdout)}
    token = records[catalogued["minted"]]["token"]
    assert {k: token[k] for k in ("token_id", "chain", "tx_hash", "issuer_batch_ref", "batch_ref", "batch_status")} == {
        "token_id": "token-7f3a", "chain": "sandbox-chain", "tx_hash": "0xabc123", "issuer_batch_ref": "RF-20261122-0001",
        "batch_ref": "RF-20261122-0001", "batch_status": "minted"}
    assert datetime.fromisoformat(token["minted_at"]).utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert records[catalogued["first"]]["token"] is None
    table = cli(data_dir, "items")
    assert "Token (chain · batch)" in table.output
    row = [line for line in table.output.splitlines() if "token-7f3a" in line]
    assert len(row) == 1 and row[0].split("│")[5].strip() == "token-7f3a", table.output
    below = table.output.splitlines()[table.output.splitlines().index(row[0]) + 1]
    assert below.split("│")[5].strip() == "sandbox-chain · RF-20261122-0001", table.output
    without = cli(data_dir, "items", "--status", "待审核")  # no token column when no listed item has one
    assert without.exit_code == 0 and "Token" not in without.output


def test_items_reads_the_tokens_in_one_query(data_dir: Path, catalogued: dict[str, int]) -> None:
    from sqlalchemy import event

    from relicflow.catalogue.token_records import token_records

    catalogue = catalogue_of(data_dir)
    statements: list[str] = []
    event.listen(catalogue.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    try:
        records = token_records(catalogue)
    finally:
        catalogue.dispose()
    assert list(records) == [catalogued["minted"]]
    assert len([s for s in statements if "mint_receipts" in s]) == 1


def test_cli_times_are_shown_in_the_configured_zone_and_json_stays_utc(data_dir: Path, catalogued: dict[str, int]) -> None:
    table = flat(cli(data_dir, "items", "--status", "已隔离").output)
    assert "2026-11-22 07:30 UTC+08:00" in table and "23:30" not in table
    london = flat(cli(data_dir, "items", "--status", "已隔离", env={"RELICFLOW_TIME_ZONE": "Europe/London"}).output)
    assert "2026-11-21 23:30 UTC+00:00" in london
    record = json.loads(cli(data_dir, "items", "--status", "已隔离", "--json").stdout)[0]
    assert datetime.fromisoformat(record["updated_at"]) == datetime(2026, 11, 21, 23, 30, tzinfo=timezone.utc)

    catalogue = catalogue_of(data_dir)
    try:
        with catalogue.session() as s:  # a sign-in, as the review app records it
            catalogue.audit(s, actor="wang", action=SIGN_IN_ACTION, details={})
        with catalogue.engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET at = '2026-11-21 23:30:00.000000' WHERE action = :a"), {"a": SIGN_IN_ACTION})
            conn.execute(text("UPDATE mint_batches SET created_at = '2026-11-21 16:05:00.000000'"))
    finally:
        catalogue.dispose()
    users = cli(data_dir, "users", "list")
    assert "2026-11-22 07:30 UTC+08:00" in flat(users.output) and "(UTC)" not in users.output
    users_json = json.loads(cli(data_dir, "users", "list", "--json").stdout)
    assert [u["last_sign_in"] for u in users_json if u["username"] == "wang"] == ["2026-11-21T23:30:00+00:00"]
    assert "2026-11-22 00:05 UTC+08:00" in flat(cli(data_dir, "batches", "list").output)
    verified = flat(cli(data_dir, "audit", "verify", "--no-anchor", env={"RELICFLOW_TIME_ZONE": "Asia/Tokyo"}).output)
    assert re.search(r"Checked at \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC\+09:00", verified), verified


def test_times_inside_report_details_are_rewritten_in_the_zone() -> None:
    detail = "audit entry 12, anchored at 2026-11-21T23:30:05.123456+00:00 (mint), is missing from the catalogue"
    assert local_times_in(detail, "Asia/Shanghai") == ("audit entry 12, anchored at 2026-11-22 07:30:05 UTC+08:00 (mint), "
                                                       "is missing from the catalogue")
    assert local_times_in("no time here, 2026-11-21 only", "Asia/Shanghai") == "no time here, 2026-11-21 only"


def test_shorten_counts_chinese_characters_as_two_cells() -> None:
    assert shorten("短句", 10) == "短句"
    assert shorten("图像疑似失焦请重新拍摄", 9) == "图像疑似…"
    assert shorten("a  b\nc", 10) == "a b c"


def test_items_json_marks_the_decisions_an_administrators_reopen_set_aside(data_dir: Path, catalogued: dict[str, int]) -> None:
    catalogue = catalogue_of(data_dir)
    try:
        reviewer = catalogue.add_user("li", "not-a-real-hash", "reviewer")
        admin = catalogue.add_user("boss", "not-a-real-hash", "admin")
        catalogue.record_decision(catalogued["first"], reviewer_id=reviewer, decision="reject", reason="误点")
        catalogue.reopen_decision(catalogued["first"], admin_id=admin, reason="审核员误点驳回")
        catalogue.record_decision(catalogued["first"], reviewer_id=reviewer, decision="approve")
    finally:
        catalogue.dispose()
    listed = json.loads(cli(data_dir, "items", "--json").stdout)
    decisions = next(i for i in listed if i["id"] == catalogued["first"])["decisions"]
    assert [(d["decision"], d["set_aside"]) for d in decisions] == [("reject", True), ("approve", False)]
