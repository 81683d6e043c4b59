"""Accession numbers read from scan file names, and the keys sheet lookups compare names by.

A file name can only suggest an accession number: ``2019.3.17_front.jpg`` almost certainly shows
object 2019.3.17, but ``2004.jpg`` may be a year and ``0001.jpg`` a camera counter. A sheet row that
carries the number confirms it; without one the number is a guess and must be shown as such.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

_EXTENSION = re.compile(r"\.[^\W\d_][^\W_]{0,4}$")  # .jpg .tif .jp2 — not ".17" of "2019.3.17"
_COPY_SUFFIX = re.compile(r"\s*\(\d+\)$")  # "2019.3.17 (1)" from a second copy in Explorer
_VIEW_SEPARATOR = re.compile(r"[_\s]")
_VIEW_NUMBER_SUFFIX = re.compile(r"-\d$")
# Optional letter prefix (Latin or Chinese, e.g. GJ-, 故), a digit, then digits and . - / and an
# optional one-letter part suffix: 2019.3.17, GJ-00123, 故00123456, 1987.45.2a.
_ACCESSION_SHAPE = re.compile(r"(?P<prefix>[^\W\d_]{0,6})[-.]?(?P<number>\d[\d.\-/]*)[A-Za-z]?")
# Names cameras, phones, scanners and chat apps give files on their own. DCF (the camera file-system
# standard) names are four characters and four digits: DSC_0001, IMG_1234, ABCD0001.
_DEVICE_DEFAULT_NAME = re.compile(
    r"(?i)(img|dsc|dscn|dscf|dji|pxl|mvimg|cimg|pict|sdim|hpim|capt|gopr|scan|image|photo|pic|page|mmexport|"
    r"p\d{7}$|r\d{7}$|[a-z_]{4}\d{4}$)"
)
_MIN_DIGITS = 3  # "A1", "photo1", "未命名-1" (Photoshop's "Untitled-1") say nothing about an object
_MIN_BARE_DIGITS = 5  # digits alone: 2004 is a year, 0001 a counter; 21-digit census numbers still pass


def base_name(file_name: str) -> str:
    """The last part of a path written with either kind of slash (sheets come from Windows)."""
    return re.split(r"[\\/]", file_name)[-1]


def match_key(text: str) -> str:
    """How sheet cells and file names compare: full-width forms folded, case ignored, outer blanks dropped."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


def strip_extension(name: str) -> str:
    return _EXTENSION.sub("", name)


def accession_number_candidates(file_name: str) -> tuple[str, ...]:
    """Every accession number the file name could stand for, most specific first, shape unchecked.

    For looking a file up among a sheet's accession numbers: a sheet row confirms a number whatever its
    shape, so ``2004.jpg`` finds the row of object 2004 and ``A_12.tif`` the row of ``A_12``.
    """
    stem = _stem(file_name)
    candidate = _VIEW_SEPARATOR.split(stem, maxsplit=1)[0]
    without_view_number = _VIEW_NUMBER_SUFFIX.sub("", candidate)
    ordered = [stem, candidate, without_view_number]
    return tuple(dict.fromkeys(text for text in ordered if text))


def accession_number_from_filename(file_name: str) -> str | None:
    """Museum naming convention: ``<accession number>[_<view>][-<digit>][.ext]``; None if no number.

    Rule: take the base name; drop the extension (letters first, so ``2019.3.17`` keeps its ``.17``)
    and an Explorer copy suffix ``(1)``; cut at the first ``_`` or space (the view: ``_front``,
    ``_正面``); drop one trailing ``-<single digit>`` (view number) when what remains still looks like
    an accession number; return the result if it looks like one, else None. So ``2019.3.17_front.jpg``
    -> ``2019.3.17``, ``GJ-00123-1.tif`` -> ``GJ-00123``, ``青铜鼎_正面.jpg`` -> None.

    Looks like one: at most 40 characters; an optional letter prefix of up to six letters, then digits
    with ``.``, ``-`` or ``/``, and an optional one-letter part suffix; at least three digits and not
    all zeros; digits alone need five or more and must not read as a date (``20240520``), a date and
    time (``20240520103100``) or a Unix time (``1716192000``); and not a name devices give files
    (``DSC01234``, ``IMG1234``, ``P1010001``, ``scan0001``). Accession numbers that contain ``_``,
    end in ``-<single digit>`` or fail these rules need the sheet (file-name column or a row with
    the number).
    """
    candidate = _VIEW_SEPARATOR.split(_stem(file_name), maxsplit=1)[0]
    without_view_number = _VIEW_NUMBER_SUFFIX.sub("", candidate)
    if without_view_number != candidate and looks_like_accession_number(without_view_number):
        return without_view_number
    return candidate if looks_like_accession_number(candidate) else None


def looks_like_accession_number(text: str) -> bool:
    """Whether a number taken from a file name may be stored (as a guess) without a sheet confirming it."""
    shape = _ACCESSION_SHAPE.fullmatch(text)
    if shape is None or not 0 < len(text) <= 40 or _DEVICE_DEFAULT_NAME.match(text):
        return False
    digits = re.sub(r"\D", "", text)
    if len(digits) < _MIN_DIGITS or not digits.strip("0"):
        return False
    number = shape.group("number")
    if number.isdigit() and _reads_as_date_or_time(number):
        return False  # 20240520_103100.jpg from a phone, 截图20240520103100.png
    return not (text.isdigit() and len(text) < _MIN_BARE_DIGITS)


def _stem(file_name: str) -> str:
    name = unicodedata.normalize("NFKC", base_name(file_name)).strip()
    return _COPY_SUFFIX.sub("", strip_extension(name)).strip()


def _reads_as_date_or_time(digits: str) -> bool:
    if len(digits) in (8, 12, 14) and _is_date(digits[:8]):
        time = digits[8:]
        return not time or (int(time[:2]) < 24 and int(time[2:4]) < 60 and (len(time) == 4 or int(time[4:]) < 60))
    # seconds or milliseconds since 1970, 2001-09 to 2033-05: names from phones, browsers and chat apps
    return len(digits) in (10, 13) and digits.startswith("1")


def _is_date(digits: str) -> bool:
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
    if not 1900 <= year <= 2099:
        return False
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True
