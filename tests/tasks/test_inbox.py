"""The inbox listing: every entry is a scan, a sheet, or skipped with a reason; nothing is opened that
could block (FIFOs) and nothing is followed out of the inbox (links)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from tasks.inbox import hash_if_settled, list_inbox


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_every_entry_is_accounted_for_with_a_reason(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    touch(inbox / "2019.3.17.tif")
    touch(inbox / "sub" / "GJ-1.jpg")
    touch(inbox / "登记表.csv")
    touch(inbox / "more.xlsx")
    touch(inbox / ".hidden.jpg")
    touch(inbox / "~$draft.xlsx")
    touch(inbox / "Thumbs.db")
    touch(inbox / "big.tif.part")
    touch(inbox / "readme.txt")
    touch(inbox / ".git" / "config")
    touch(inbox / "@eaDir" / "x.jpg")
    os.mkfifo(inbox / "pipe.jpg")
    outside = touch(tmp_path / "elsewhere.jpg")
    (inbox / "link.jpg").symlink_to(outside)
    (inbox / "linked-folder").symlink_to(tmp_path)

    listing = list_inbox(inbox)

    assert [f.relative for f in listing.scans] == ["2019.3.17.tif", "sub/GJ-1.jpg"]
    assert [p.name for p in listing.sheets] == ["more.xlsx", "登记表.csv"]
    assert {(s.relative, s.code) for s in listing.skipped} == {
        (".hidden.jpg", "hidden"), ("~$draft.xlsx", "hidden"), ("Thumbs.db", "system_file"),
        ("big.tif.part", "partial_file"), ("readme.txt", "note"), (".git/", "hidden"), ("@eaDir/", "system_folder"),
        ("pipe.jpg", "not_a_regular_file"), ("link.jpg", "symlink"), ("linked-folder", "symlink"),
    }
    assert all(s.message_en and s.message_zh for s in listing.skipped)


def test_files_that_changed_moments_ago_are_left_for_later(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    old = touch(inbox / "old.jpg")
    fresh = touch(inbox / "fresh.jpg")
    long_ago = time.time() - 3600
    os.utime(old, (long_ago, long_ago))
    listing = list_inbox(inbox, settle_s=10.0)
    # utime itself changes ctime, so "old" only counts as settled once its ctime is old too: look 11 s ahead
    later = list_inbox(inbox, settle_s=10.0, now=time.time() + 11)
    assert [s.code for s in listing.skipped] == ["still_being_copied", "still_being_copied"]
    assert [f.path for f in later.scans] == [fresh, old]


def test_a_future_modification_time_does_not_hide_a_file_for_ever(tmp_path: Path) -> None:
    """A camera with a wrong clock: mtime a year ahead. The settle test falls back to ctime."""
    path = touch(tmp_path / "inbox" / "camera.jpg")
    future = time.time() + 365 * 86400
    os.utime(path, (future, future))
    assert list_inbox(tmp_path / "inbox", settle_s=10.0, now=time.time() + 11).scans[0].path == path


def test_a_file_that_changes_while_it_is_hashed_is_not_taken(tmp_path: Path) -> None:
    path = touch(tmp_path / "inbox" / "growing.tif", b"a" * 1000)
    (entry,) = list_inbox(tmp_path / "inbox").scans
    assert hash_if_settled(entry) is not None
    with path.open("ab") as f:
        f.write(b"more")
    assert hash_if_settled(entry) is None  # listed before the copy went on: not settled


def _listed_as(user: int | None, inbox: Path) -> list[list[object]]:
    """list_inbox in a forked child that has dropped to ``user`` (no exec: the interpreter may sit in
    a folder that user cannot enter)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(read)
            if user is not None:
                os.setgid(user)
                os.setuid(user)
            listing = list_inbox(inbox)
            data = json.dumps([[f.relative for f in listing.scans], [[s.relative, s.code] for s in listing.skipped]])
            os.write(write, data.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return json.loads(out)


def test_an_unreadable_subfolder_is_reported_not_fatal() -> None:
    """Listed by an unprivileged user when run as root (root reads every folder), so the permission bites."""
    base = Path(tempfile.mkdtemp(prefix="relicflow-inbox-"))
    inbox = base / "inbox"
    try:
        touch(inbox / "ok.jpg")
        touch(inbox / "locked" / "secret.jpg")
        for folder in (base, inbox):
            os.chmod(folder, 0o755)
        os.chmod(inbox / "locked", 0o700 if os.geteuid() == 0 else 0)
        assert _listed_as(65534 if os.geteuid() == 0 else None, inbox) == [["ok.jpg"], [["locked", "unreadable_folder"]]]
    finally:
        os.chmod(inbox / "locked", 0o755)
        shutil.rmtree(base)


def test_a_name_that_is_not_utf8_is_shown_byte_by_byte_with_its_likely_reading() -> None:
    """青铜鼎 in GBK holds \\xcd\\xad, which alone is valid UTF-8 (a combining mark): shown escaped, not as a stray accent."""
    from tasks.inbox import name_hints, name_problem, printable_name

    name = os.fsdecode("青铜鼎.jpg".encode("gbk"))
    assert name_problem(name) == "not_utf8"
    assert printable_name(name) == "\\xc7\\xe0\\xcd\\xad\\xb6\\xa6.jpg"
    assert name_hints(name) == ("青铜鼎.jpg (GB18030)",)
    assert printable_name("青铜鼎\n.jpg") == "青铜鼎\\n.jpg" and name_problem("青铜鼎\n.jpg") == "control_characters"
    assert printable_name("正常 名字.jpg") == "正常 名字.jpg" and name_problem("正常 名字.jpg") is None
