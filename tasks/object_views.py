"""Objects photographed from several sides: which view a file shows, and what a reviewer saw.

Pure: no database, no Prefect. Museums name views in the file name (``GZ0001_正面.jpg``,
``2019.3.17_back-1.tif``) or in the accession sheet (a 视图 column beside the file names). Each label
maps to a canonical code (front, back, ...) through a table staff can extend in settings, so
"背面", "反面" and "verso" are one view. The review decision binds to :func:`seen_state`: every
current image (view, version, content hash) and the record version, so an approval never carries over
to a rescan or a corrected record it did not see.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# canonical code → the labels that name it (compared case- and width-insensitively)
DEFAULT_VIEW_LABELS: dict[str, list[str]] = {
    "front": ["正面", "正视", "正", "前面", "front", "obverse", "recto"],
    "back": ["背面", "反面", "后面", "背", "back", "reverse", "verso", "rear"],
    "left": ["左侧", "左侧面", "左面", "左视", "left"],
    "right": ["右侧", "右侧面", "右面", "右视", "right"],
    "side": ["侧面", "侧视", "side", "profile"],
    "top": ["顶部", "顶面", "俯视", "上面", "top"],
    "bottom": ["底部", "底面", "仰视", "底", "bottom", "base", "underside"],
    "detail": ["局部", "细节", "特写", "detail", "closeup", "close-up"],
    "rubbing": ["拓片", "拓本", "rubbing"],
    "inscription": ["铭文", "款识", "底款", "inscription", "mark"],
}
# the order views are shown (and listed for the issuer) in; unknown ones after, by label
VIEW_ORDER = ("front", "back", "left", "right", "side", "top", "bottom", "inscription", "detail", "rubbing")
# several photographs of these are normal (局部1, 局部2): a new one is added, never taken for a rescan
REPEATABLE_VIEWS = frozenset({"detail", "rubbing", "inscription", None})

VIEW_NAMES: dict[str, tuple[str, str]] = {  # code → (zh-CN, en)
    "front": ("正面", "front"), "back": ("背面", "back"), "left": ("左侧", "left side"), "right": ("右侧", "right side"),
    "side": ("侧面", "side"), "top": ("顶部", "top"), "bottom": ("底部", "bottom"), "detail": ("局部", "detail"),
    "rubbing": ("拓片", "rubbing"), "inscription": ("铭文/款识", "inscription"),
}

_SEPARATOR = re.compile(r"[_\s]+")
_TRAILING_NUMBER = re.compile(r"[-_\s]?\(?\d{1,2}\)?$")  # 局部1, detail-2, back (1)
_EXTENSION = re.compile(r"\.[^\W\d_][^\W_]{0,4}$")


@dataclass(frozen=True)
class ViewLabel:
    """A view as found: ``code`` canonical (None when the label names no known view), ``label`` as written."""

    code: str | None
    label: str | None

    @property
    def known(self) -> bool:
        return self.code is not None


NO_VIEW = ViewLabel(None, None)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().lower()


def view_lookup(labels: Mapping[str, Iterable[str]] | None = None) -> dict[str, str]:
    """Folded label → code; the code itself always counts as a label of itself."""
    table = DEFAULT_VIEW_LABELS if labels is None else labels
    lookup: dict[str, str] = {}
    for code, names in table.items():
        for name in [code, *names]:
            lookup.setdefault(_fold(name), code)
    return lookup


def view_of_label(text: str, lookup: Mapping[str, str]) -> ViewLabel:
    """The view a label names: exact, else without a trailing number (局部2 → detail)."""
    label = text.strip()
    if not label:
        return NO_VIEW
    folded = _fold(label)
    code = lookup.get(folded) or lookup.get(_TRAILING_NUMBER.sub("", folded).strip(" -_"))
    return ViewLabel(code, label)


def view_from_file_name(file_name: str, lookup: Mapping[str, str]) -> ViewLabel:
    """The view named after the accession number: ``GZ0001_正面.jpg`` → front; ``GZ0001.jpg`` → none.

    Looks at every part after the first separator, last first (``GZ1_bronze_back.tif``), so the
    object's own words in the name do not hide the view.
    """
    base = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = _EXTENSION.sub("", unicodedata.normalize("NFKC", base)).strip()
    parts = [p for p in _SEPARATOR.split(stem) if p]
    if len(parts) < 2:
        return NO_VIEW
    for part in reversed(parts[1:]):
        found = view_of_label(part, lookup)
        if found.known:
            return found
    last = parts[-1]
    return ViewLabel(None, last) if len(parts) == 2 and not last.isdigit() else NO_VIEW


def view_from_sheet(view_cell: str | None, file_names: Sequence[str], file_name: str, lookup: Mapping[str, str]) -> ViewLabel:
    """The view a sheet row gives this file: one label for a one-file row, or one label per file name
    in the same order ("正面；背面" beside "a.jpg；b.jpg"). NO_VIEW when the row says nothing usable."""
    if not view_cell or not view_cell.strip():
        return NO_VIEW
    labels = [v for v in re.split(r"[;；,，、\n]", view_cell) if v.strip()]
    folded = [_fold(n) for n in file_names]
    file_name = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    if len(labels) == 1 and len(file_names) <= 1:
        return view_of_label(labels[0], lookup)
    if len(labels) == len(file_names) and _fold(file_name) in folded:
        return view_of_label(labels[folded.index(_fold(file_name))], lookup)
    return NO_VIEW


def choose_view(from_sheet: ViewLabel, from_name: ViewLabel) -> ViewLabel:
    """The sheet's view when it names a known one, else the file name's."""
    if from_sheet.known:
        return from_sheet
    if from_name.known:
        return from_name
    return from_sheet if from_sheet.label else from_name


def view_name(code: str | None, label: str | None, locale: str) -> str:
    """How a view is shown: its name in the language, the label as written for unknown ones."""
    if code in VIEW_NAMES:
        zh, en = VIEW_NAMES[code]
        return en if locale == "en" else zh
    if label:
        return label
    return "view" if locale == "en" else "图像"


def view_rank(code: str | None, label: str | None = None) -> tuple[int, str]:
    return (VIEW_ORDER.index(code) if code in VIEW_ORDER else len(VIEW_ORDER), label or "")


@dataclass(frozen=True)
class ImageVersion:
    """A current image as the reviewer is shown it."""

    image_id: int
    view: str | None
    view_label: str | None
    version: int
    sha256: str


def seen_state(images: Iterable[ImageVersion], record_version: int) -> dict[str, Any]:
    """What a reviewer deciding now sees, in a canonical order (view, then image id): the value a
    decision records and the mint compares with the object as it is when it is sent."""
    ordered = sorted(images, key=lambda i: (*view_rank(i.view, i.view_label), i.image_id))
    return {"images": [{"view": i.view, "version": i.version, "sha256": i.sha256} for i in ordered],
            "record_version": record_version}


def seen_digest(seen: Mapping[str, Any]) -> str:
    """A short fingerprint of :func:`seen_state` for a form to carry (the page the reviewer decided on)."""
    return hashlib.sha256(json.dumps(seen, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()[:32]


def takes_place_of(view: ViewLabel, file_name: str, current: Sequence[tuple[int, str | None, str | None]], *,
                   rescan: bool) -> int | None:
    """The current image (id) a new photograph replaces as its next version, or None to add it.

    ``current`` holds (image id, view code, file name) of the object's current images. Only an object
    sent back (``rescan``) has photographs replaced: the one of the same file name, else of the same view
    (unless several photographs of that view are normal: 局部, 拓片), else the only one when it and the
    rescan are both unlabelled. An undecided object gains every photograph that arrives: replacing one
    a reviewer may already have looked at is for a send-back to ask for.
    """
    if not rescan:
        return None
    folded = _fold(file_name)
    same_name = [image_id for image_id, _, name in current if name and _fold(name) == folded]
    if same_name:
        return same_name[0]
    if view.code not in REPEATABLE_VIEWS:
        same_view = [image_id for image_id, code, _ in current if code == view.code]
        if same_view:
            return same_view[0]
    if view.code is None and len(current) == 1 and current[0][1] is None:
        return current[0][0]
    return None


def decided_on(decision_seen: Mapping[str, Any] | None, decision_image_sha256: str | None, seen: Mapping[str, Any]) -> bool:
    """Whether a decision was made on what the object shows now. A decision from before decisions
    recorded what they saw counts only for an object still of one image at record version 1, and only
    for that image."""
    if decision_seen is not None:
        return dict(decision_seen) == dict(seen)
    images = seen.get("images", [])
    return len(images) == 1 and seen.get("record_version") == 1 and images[0]["sha256"] == decision_image_sha256
