"""Finding scans and accession sheets in the studio's inbox. Filesystem only; no catalogue, no Prefect.

Everything in the inbox is accounted for: a scan to ingest, a sheet to read, or a skipped entry with
the reason (hidden, a link, still being copied, not a regular file, ...), so a technician who wonders
why a file was not taken in finds it in the run's report. The inbox is never modified.
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_module
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from tasks.sheet_files import SHEET_SUFFIXES

# Left by copy tools and browsers while a file is still arriving; taken once it has its real name.
PARTIAL_SUFFIXES = frozenset({".part", ".partial", ".crdownload", ".download", ".tmp", ".temp", ".!qb", ".filepart"})
# Written by operating systems and viewers; never scans.
SYSTEM_NAMES = frozenset({"thumbs.db", "desktop.ini", ".ds_store", "ehthumbs.db"})
SYSTEM_FOLDERS = frozenset({"@eadir", "#recycle", "$recycle.bin", "system volume information", "__macosx", "lost+found"})
NOTE_SUFFIXES = frozenset({".txt", ".md", ".db", ".ini", ".log", ".url", ".lnk"})
HIDDEN_PREFIXES = (".", "~$", "._")


@dataclass(frozen=True)
class InboxFile:
    """A scan to ingest. ``path`` is what the OS gave (it may carry undecodable bytes as surrogate
    escapes); ``relative`` is always printable UTF-8, safe for the catalogue, logs and reports."""

    path: Path
    relative: str
    size: int
    mtime_ns: int
    ctime_ns: int
    name_problem: str | None = None  # "not_utf8" or "control_characters"
    name_hints: tuple[str, ...] = ()  # the name read in the encodings it was probably written in

    @property
    def file_name(self) -> str:
        return self.relative.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class SkippedEntry:
    relative: str
    code: str
    message_en: str
    message_zh: str


@dataclass(frozen=True)
class InboxListing:
    scans: list[InboxFile] = field(default_factory=list)
    sheets: list[Path] = field(default_factory=list)
    skipped: list[SkippedEntry] = field(default_factory=list)


_SKIP_REASONS: dict[str, tuple[str, str]] = {
    "hidden": ("Hidden file or folder (its name starts with '.', '~$' or '._'); such files are made by the "
               "operating system or office programs and are not scans.",
               "隐藏文件或文件夹（名称以“.”“~$”或“._”开头），由操作系统或办公软件生成，不是扫描件。"),
    "system_file": ("A file the operating system or a photo viewer writes (e.g. Thumbs.db); not a scan.",
                    "操作系统或看图软件生成的文件（如 Thumbs.db），不是扫描件。"),
    "system_folder": ("A folder the operating system or a NAS keeps (recycle bin, thumbnails); its contents are not read.",
                      "操作系统或网络存储使用的文件夹（回收站、缩略图等），不读取其中内容。"),
    "note": ("A text note or shortcut, not a scan; it is left where it is.", "文本说明或快捷方式，不是扫描件，保留原处。"),
    "symlink": ("A link (shortcut) to a file elsewhere; links are not followed. Copy the file itself into the inbox.",
                "这是指向其他位置文件的链接（快捷方式），系统不跟随链接。请把文件本身拷贝进收件箱。"),
    "partial_file": ("A file still being downloaded or copied (temporary name); it is taken once it has its final name.",
                     "文件仍在下载或拷贝中（临时文件名），完成并改为正式文件名后会自动处理。"),
    "still_being_copied": ("The file changed moments ago, so it is probably still being copied; it is taken on a later "
                           "run once it has stopped changing.",
                           "该文件刚刚发生变化，可能仍在拷贝中；待其不再变化后，会在之后的运行中自动处理。"),
    "not_a_regular_file": ("Not a regular file (a pipe, socket or device); it cannot be a scan and is not opened.",
                           "不是普通文件（管道、套接字或设备），不可能是扫描件，系统不会打开它。"),
    "sheet_name_unusable": ("An accession sheet whose name is not valid UTF-8 text (or holds control characters); it "
                            "was not read. Rename it (e.g. 登记表.csv) and drop it into the inbox again.",
                            "登记表的文件名不是有效的 UTF-8 文本（或含控制字符），未被读取。请重命名（如“登记表.csv”）后重新放入收件箱。"),
    "unreadable_folder": ("This folder cannot be read (no permission, or it disappeared); its files were not looked at. "
                          "Check the folder's permissions.",
                          "无法读取该文件夹（没有权限或已消失），其中的文件未被处理。请检查文件夹权限。"),
}


def skipped(relative: str, code: str) -> SkippedEntry:
    en, zh = _SKIP_REASONS[code]
    return SkippedEntry(relative=relative, code=code, message_en=en, message_zh=zh)


def printable_name(name: str) -> str:
    """The name as printable UTF-8 text: control characters shown as ``\\n``; in a name that is not UTF-8
    at all, every byte outside ASCII as ``\\xe9`` (fragments of GBK that happen to be valid UTF-8 would
    show as stray accents and combining marks; the reading of the whole name is given separately)."""
    raw = os.fsencode(name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("ascii", "backslashreplace")
    return "".join(ch if unicodedata.category(ch) != "Cc" else ch.encode("unicode_escape").decode("ascii") for ch in text)


def name_problem(name: str) -> str | None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "not_utf8"
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        return "control_characters"
    return None


def name_hints(name: str) -> tuple[str, ...]:
    """How an undecodable name probably reads: old Windows ZIP tools write names in the system code page
    (GBK on Chinese Windows, Windows-1252 in the West) without saying so."""
    raw = os.fsencode(name)
    hints = []
    for encoding in ("gb18030", "big5", "cp1252"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding in ("gb18030", "big5") and not any("\u4e00" <= ch <= "\u9fff" for ch in text):
            continue  # decoded, but not to Chinese: probably not this encoding
        if all(ch.isprintable() for ch in text):
            hints.append(f"{text} ({encoding.upper()})")
            break
    return tuple(hints)


def last_change(st: os.stat_result, now: float) -> float:
    """When the file last changed: mtime, unless a copy tool set it to the past (then ctime tells), or a
    camera with a wrong clock set it to the future."""
    return st.st_ctime if st.st_mtime > now else max(st.st_mtime, st.st_ctime)


def list_inbox(inbox: Path, *, settle_s: float = 0.0, now: float | None = None) -> InboxListing:
    """Scans, sheets and skipped entries under ``inbox``, each sorted by relative path.

    Files that changed in the last ``settle_s`` seconds are skipped as still being copied: a half-copied
    master would otherwise be quarantined as truncated.
    """
    listing = InboxListing()
    if not inbox.is_dir():
        return listing
    now = time.time() if now is None else now
    unreadable: list[str] = []

    def on_error(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else inbox
        unreadable.append(printable_name(os.fspath(where.relative_to(inbox))) if where != inbox else ".")

    for folder, dirs, files in os.walk(inbox, onerror=on_error):
        base = Path(folder)
        kept_dirs = []
        for d in sorted(dirs):
            rel = printable_name((base / d).relative_to(inbox).as_posix())
            if (base / d).is_symlink():
                listing.skipped.append(skipped(rel, "symlink"))
            elif d.startswith(HIDDEN_PREFIXES):
                listing.skipped.append(skipped(rel + "/", "hidden"))
            elif d.lower() in SYSTEM_FOLDERS:
                listing.skipped.append(skipped(rel + "/", "system_folder"))
            else:
                kept_dirs.append(d)
        dirs[:] = kept_dirs
        for name in sorted(files):
            _classify(base / name, inbox, now, settle_s, listing)
    listing.skipped.extend(skipped(rel, "unreadable_folder") for rel in unreadable)
    listing.scans.sort(key=lambda f: f.relative)
    listing.sheets.sort()
    listing.skipped.sort(key=lambda s: s.relative)
    return listing


def _classify(path: Path, inbox: Path, now: float, settle_s: float, listing: InboxListing) -> None:
    rel_raw = path.relative_to(inbox).as_posix()
    rel = printable_name(rel_raw)
    name = path.name
    try:
        st = path.lstat()
    except OSError:  # vanished between listing and looking: nothing to account for
        return
    lower = name.lower()
    suffix = os.path.splitext(lower)[1]
    if stat_module.S_ISLNK(st.st_mode):
        listing.skipped.append(skipped(rel, "symlink"))
    elif not stat_module.S_ISREG(st.st_mode):
        listing.skipped.append(skipped(rel, "not_a_regular_file"))
    elif lower in SYSTEM_NAMES:
        listing.skipped.append(skipped(rel, "system_file"))
    elif name.startswith(HIDDEN_PREFIXES):
        listing.skipped.append(skipped(rel, "hidden"))
    elif suffix in PARTIAL_SUFFIXES:
        listing.skipped.append(skipped(rel, "partial_file"))
    elif suffix in NOTE_SUFFIXES:
        listing.skipped.append(skipped(rel, "note"))
    elif settle_s > 0 and now - last_change(st, now) < settle_s:
        listing.skipped.append(skipped(rel, "still_being_copied"))
    elif suffix in SHEET_SUFFIXES:
        if name_problem(rel_raw) is None:
            listing.sheets.append(path)
        else:
            listing.skipped.append(skipped(rel, "sheet_name_unusable"))
    else:
        problem = name_problem(rel_raw)
        listing.scans.append(InboxFile(path=path, relative=rel, size=st.st_size, mtime_ns=st.st_mtime_ns,
                                       ctime_ns=st.st_ctime_ns, name_problem=problem,
                                       name_hints=name_hints(name) if problem == "not_utf8" else ()))


def sha256_of_file(path: Path, *, chunk_size: int = 1 << 20) -> str:
    """Streaming SHA-256: masters can be several hundred megabytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def hash_if_settled(file: InboxFile) -> str | None:
    """SHA-256 of a file that did not change while it was read; None if it did (still being copied)."""
    sha = sha256_of_file(file.path)
    st = file.path.stat()
    if (st.st_size, st.st_mtime_ns, st.st_ctime_ns) != (file.size, file.mtime_ns, file.ctime_ns):
        return None
    return sha
