"""Grade spellings museums use map to one canonical grade; text that is not a grade maps to nothing."""

from __future__ import annotations

import pytest

from tasks.relic_grade import grade_key, normalise_grade, required_approvals_for_grade


@pytest.mark.parametrize("text", [
    "一级", "一級", "一级文物", "国家一级", "国家一级文物", "國家一級文物", "一级品", "一级甲", "一级乙", "一级（甲）",
    "一级珍贵文物", "壹级", "Ⅰ级", "１级", " 一 级 ", "一\u200b级", "Grade 1", "grade I", "GRADE ONE", "first-grade",
    "First Class cultural relics", "ＧＲＡＤＥ　１", "national grade 1", "Level 1",
])
def test_first_grade_spellings(text: str) -> None:
    assert normalise_grade(text) == "一级"


@pytest.mark.parametrize(("text", "grade"), [
    ("二级", "二级"), ("二級文物", "二级"), ("貳级", "二级"), ("grade 2", "二级"), ("second-class", "二级"),
    ("三级", "三级"), ("三级品", "三级"), ("叁級", "三级"), ("Grade III", "三级"), ("3rd grade", "三级"),
    ("一般", "一般"), ("一般文物", "一般"), ("general", "一般"), ("General cultural relics", "一般"),
    ("未定级", "未定级"), ("未定級文物", "未定级"), ("ungraded", "未定级"), ("not graded", "未定级"),
])
def test_other_grades(text: str, grade: str) -> None:
    assert normalise_grade(text) == grade


@pytest.mark.parametrize("text", [None, "", "   ", "国家级", "珍贵文物", "一级?", "一级、二级", "四级", "grade 4", "grade iv",
                                  "first", "1", "一", "待定", "一级二级"])
def test_text_that_is_not_a_known_grade_is_not_guessed(text: str | None) -> None:
    assert normalise_grade(text) is None


def test_required_approvals_compare_normalised_grades_both_ways() -> None:
    assert required_approvals_for_grade(["一級文物"], ["一级"]) == 2
    assert required_approvals_for_grade(["国家一级"], ["一級"]) == 2  # the setting may be written either way
    assert required_approvals_for_grade(["三级"], ["一级"]) == 1
    assert required_approvals_for_grade([None, "二级品"], ["一级", "二级"]) == 2  # any of the item's grade texts
    assert required_approvals_for_grade([None], ["一级"]) == 1
    # a configured grade this module does not know still matches the same text in a sheet
    assert required_approvals_for_grade(["珍贵 文物"], ["珍贵文物"]) == 2
    assert grade_key("珍贵文物") == "珍贵文物" and grade_key("一級") == "一级"


def test_only_a_grade_that_cannot_be_read_is_noted() -> None:
    from tasks.relic_grade import unrecognised_grade_note

    assert unrecognised_grade_note("一級文物") is None and unrecognised_grade_note(None) is None and unrecognised_grade_note(" ") is None
    code, en, zh = unrecognised_grade_note("珍贵")  # type: ignore[misc]
    assert code == "grade_unrecognised" and "珍贵" in en and "珍贵" in zh and "一位审核员" in zh
