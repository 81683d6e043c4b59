"""The relic grade (级别) of an accession-sheet row, in one canonical spelling. Pure: text in, text out.

Museum systems and hand-kept sheets write the same grade many ways: 一级, 一級 (traditional), 一级文物,
国家一级文物, 一级品, 一级甲 (the old sub-grades 甲/乙), ＩＩ级 (full width), "Grade 1", "first-grade".
Rules that depend on the grade (two reviewers for 一级) must see them all as one. The mapping never
guesses: text it does not recognise gives None, and the caller keeps the original text for people.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

GRADE_1, GRADE_2, GRADE_3, GENERAL, UNGRADED = "一级", "二级", "三级", "一般", "未定级"
CANONICAL_GRADES = (GRADE_1, GRADE_2, GRADE_3, GENERAL, UNGRADED)
DEFAULT_TWO_REVIEWER_GRADES = (GRADE_1,)

# Only the characters that occur in grade text: traditional forms and the formal numerals (大写).
_CHARACTERS = str.maketrans({"級": "级", "國": "国", "壹": "一", "貳": "二", "贰": "二", "參": "三", "叁": "三", "叄": "三"})
_NUMERALS = {"一": GRADE_1, "1": GRADE_1, "i": GRADE_1, "二": GRADE_2, "2": GRADE_2, "ii": GRADE_2,
             "三": GRADE_3, "3": GRADE_3, "iii": GRADE_3}
_WORDS = {"one": GRADE_1, "first": GRADE_1, "1st": GRADE_1, "two": GRADE_2, "second": GRADE_2, "2nd": GRADE_2,
          "three": GRADE_3, "third": GRADE_3, "3rd": GRADE_3, **{k: v for k, v in _NUMERALS.items() if k.isascii()}}

# 国家一级文物, 一级品, 一级甲, 一级（乙）, Ⅰ级 ... ; the numeral, then 级, then at most a sub-grade and a noun.
_CHINESE = re.compile(r"(?:国家)?(?P<n>一|二|三|1|2|3|i|ii|iii)级(?:\(?[甲乙](?:等|级)?\)?)?(?:珍贵)?(?:文物|藏品|品)?")
_CHINESE_OTHER = {re.compile(r"一般(?:文物|藏品|品)?"): GENERAL, re.compile(r"未定级(?:文物|藏品)?"): UNGRADED}
# grade 1, grade-one, class I, level 2, first grade, first-class (cultural) relic, national grade 1 ...
_ENGLISH_LEADING = re.compile(r"(?:national )?(?:grade|class|level) (?P<n>[a-z0-9]+)(?: (?:cultural )?(?:relics?|objects?))?")
_ENGLISH_TRAILING = re.compile(r"(?:national )?(?P<n>[a-z0-9]+) (?:grade|class|level)(?: (?:cultural )?(?:relics?|objects?))?")
_ENGLISH_OTHER = {re.compile(r"general(?: (?:cultural )?(?:relics?|objects?))?"): GENERAL,
                  re.compile(r"(?:ungraded|not graded|unclassified|not yet graded)(?: (?:cultural )?(?:relics?|objects?))?"): UNGRADED}


def _folded(text: str) -> str:
    """NFKC (full width, Ⅰ→I, compatibility ideographs), traditional→simplified for the few characters
    involved, lower case, no invisible or spacing characters, brackets and dashes made plain."""
    text = unicodedata.normalize("NFKC", text).translate(_CHARACTERS).lower()
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc"))
    text = re.sub(r"[\s_\-‐‑–—]+", " ", text).strip()
    return text.replace("[", "(").replace("]", ")")


def normalise_grade(text: str | None) -> str | None:
    """The canonical grade (一级, 二级, 三级, 一般, 未定级) of ``text``, or None when it is not recognised."""
    if text is None:
        return None
    folded = _folded(str(text))
    if not folded:
        return None
    if re.search(r"[\u3400-\u9fff]", folded):
        compact = folded.replace(" ", "")
        if (m := _CHINESE.fullmatch(compact)) is not None:
            return _NUMERALS[m.group("n")]
        return next((grade for pattern, grade in _CHINESE_OTHER.items() if pattern.fullmatch(compact)), None)
    for pattern in (_ENGLISH_LEADING, _ENGLISH_TRAILING):
        if (m := pattern.fullmatch(folded)) is not None and m.group("n") in _WORDS:
            return _WORDS[m.group("n")]
    return next((grade for pattern, grade in _ENGLISH_OTHER.items() if pattern.fullmatch(folded)), None)


def grade_key(text: str | None) -> str | None:
    """What two grade texts are compared by: the canonical grade, else the folded text itself (so a
    configured grade this module does not know still matches the same spelling in a sheet)."""
    if text is None:
        return None
    return normalise_grade(text) or (_folded(str(text)).replace(" ", "") or None)


def required_approvals_for_grade(grade_texts: Iterable[str | None], two_reviewer_grades: Iterable[str]) -> int:
    """2 when any of the item's grade texts (the sheet's, the catalogue's) is a two-reviewer grade, else 1."""
    needs_two = {key for g in two_reviewer_grades if (key := grade_key(g)) is not None}
    return 2 if any(grade_key(g) in needs_two for g in grade_texts if g is not None) else 1


def unrecognised_grade_note(text: str | None) -> tuple[str, str, str] | None:
    """(code, English, Chinese) when a sheet gives a grade this module cannot read; None otherwise.

    The text is kept as written and counts as no grade for the two-reviewer rule, so a reviewer must see
    that it was not understood: it may be a graded relic written in a way nobody foresaw.
    """
    if text is None or not str(text).strip() or normalise_grade(text) is not None:
        return None
    shown = str(text).strip()[:60]
    return ("grade_unrecognised",
            f"The accession sheet gives the grade as \u201c{shown}\u201d, which is not one of 一级, 二级, 三级, 一般, 未定级 "
            "(in any usual spelling). It is kept as written, and the item needs only one reviewer's approval. If the "
            "object is a graded relic, correct the grade in the accession sheet.",
            f"登记表中的级别为“{shown}”，不属于一级、二级、三级、一般、未定级（及其常见写法）。已按原文保留，"
            "该藏品只需一位审核员通过。如果该藏品为定级文物，请在登记表中更正级别。")
