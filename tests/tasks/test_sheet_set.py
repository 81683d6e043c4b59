"""All the sheets in an inbox read and joined: rows looked up across them, disagreements set aside, every
problem reported and none stopping the other sheets; what the sheets say about each scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from sheet_builders import write_csv, write_xlsx
from tasks import sheet_set
from tasks.accession_sheet import read_sheet_file
from tasks.sheet_problems import RowRef
from tasks.sheet_set import SheetSet, read_accession_sheets

CSV_SHEET = "总登记号,藏品名称,级别,文件名\n2019.3.17,彩绘陶罐,二级,2019.3.17_front.jpg\n2020.1.1,青铜鼎,一级,青铜鼎_正面.jpg\n"
XLSX_ROWS = [["总登记号", "藏品名称", "级别", "文件名"], ["GJ-00123", "青釉碗", "三级", "碗.tif"], ["2004", "玉璧", "一般", ""]]


def test_csv_and_xlsx_sheets_are_joined(tmp_path: Path) -> None:
    sheets = read_accession_sheets([write_csv(tmp_path, CSV_SHEET, "gb18030", name="batch1/登记表.csv"),
                                    write_xlsx(tmp_path, XLSX_ROWS, name="batch2/登记表.xlsx")], root=tmp_path)
    assert sheets.problems == () and sheets.sheet_names == ("batch1/登记表.csv", "batch2/登记表.xlsx")
    assert [row.ref for row in sheets.rows] == [RowRef("batch1/登记表.csv", 2), RowRef("batch1/登记表.csv", 3),
                                                RowRef("batch2/登记表.xlsx", 2), RowRef("batch2/登记表.xlsx", 3)]
    match = sheets.match("碗.TIF")
    assert (match.row, match.source, match.accession_number) == (sheets.rows[2], "sheet_file_name", "GJ-00123")
    assert match.warnings == () and match.row is not None and match.row.fields["title"] == "青釉碗"
    front = sheets.match("inbox/batch1/2019.3.17_front.jpg")
    assert front.row is sheets.rows[0] and front.file_name == "2019.3.17_front.jpg"
    # the sheet names only the front view; the back view finds the row by the number in its name
    back = sheets.match("2019.3.17_back.jpg")
    assert (back.row, back.source, back.guessed, back.warnings) == (sheets.rows[0], "sheet_accession_number", False, ())
    # a number no guess would dare (2004 may be a year) is confirmed by the row that carries it
    jade = sheets.match("2004.jpg")
    assert (jade.accession_number, jade.source) == ("2004", "sheet_accession_number")
    assert sheets.row_for_accession("gj-00123") is sheets.rows[2] and sheets.row_for_file("青铜鼎_正面.JPG") is sheets.rows[1]


def test_the_same_rows_in_two_sheets_are_one_row(tmp_path: Path) -> None:
    rows = [["总登记号", "藏品名称", "级别", "文件名"], ["2019.3.17", "彩绘陶罐", "二级", "2019.3.17_front.jpg"],
            ["2020.1.1", "青铜鼎", "一级", "青铜鼎_正面.jpg"]]
    csv_path = write_csv(tmp_path, CSV_SHEET, "utf-8-sig", name="登记表.csv")
    sheets = read_accession_sheets([csv_path, write_xlsx(tmp_path, rows, name="登记表.xlsx")])  # one export, saved twice
    assert sheets.problems == () and sheets.refused == ()
    assert [row.ref for row in sheets.rows] == [RowRef("登记表.csv", 2), RowRef("登记表.csv", 3)]
    assert sheets.match("青铜鼎_正面.jpg").row is sheets.rows[1]


def test_different_rows_for_one_accession_number_are_both_set_aside(tmp_path: Path) -> None:
    first = write_csv(tmp_path, CSV_SHEET, name="a.csv")
    second = write_csv(tmp_path, "总登记号,藏品名称,级别,文件名\n2020.1.1,青铜方鼎,二级,鼎.jpg\n2021.9.9,玉璧,三级,璧.jpg\n",
                       name="b.csv")
    sheets = read_accession_sheets([first, second])
    assert [row.accession_number for row in sheets.rows] == ["2019.3.17", "2021.9.9"]  # the others are used
    (problem,) = sheets.problems
    assert problem.code == "sheet_accession_conflict" and problem.level == "row"
    assert problem.rows == (RowRef("a.csv", 3), RowRef("b.csv", 2)) and problem.sheets == ("a.csv", "b.csv")
    assert problem.accession_numbers == ("2020.1.1",) and problem.file_names == ("青铜鼎_正面.jpg", "鼎.jpg")
    assert "row 3 of a.csv and row 2 of b.csv" in problem.message_en
    assert "a.csv 第 3 行、b.csv 第 2 行" in problem.message_zh
    assert sheets.sheet_problems == () and sheets.row_problems == (problem,)
    # each scan either row would have named hears why it has no record
    for name in ("青铜鼎_正面.jpg", "鼎.jpg", "2020.1.1_back.jpg"):
        match = sheets.match(name)
        assert match.row is None and match.problems == (problem,), name
        assert problem in match.warnings and "no_sheet_row" not in [w.code for w in match.warnings]
    assert sheets.match("2020.1.1_back.jpg").accession_number == "2020.1.1"  # a guess, said to be one
    assert [w.code for w in sheets.match("2020.1.1_back.jpg").warnings] == ["sheet_accession_conflict",
                                                                          "accession_number_guessed"]


def test_one_file_named_for_two_objects_in_two_sheets(tmp_path: Path) -> None:
    sheets = read_accession_sheets([write_csv(tmp_path, "总登记号,文件名\nA100,x.jpg\nA101,y.jpg\n", name="a.csv"),
                                    write_csv(tmp_path, "总登记号,文件名\nB200,X.JPG\n", name="b.csv")])
    assert [row.accession_number for row in sheets.rows] == ["A101"]
    (problem,) = sheets.problems
    assert problem.code == "sheet_file_name_conflict" and problem.accession_numbers == ("A100", "B200")
    assert sheets.match("x.jpg").problems == (problem,) and sheets.match("x.jpg").row is None


def test_duplicate_within_a_sheet_sets_aside_those_rows_and_tells_their_scans(tmp_path: Path) -> None:
    text = "总登记号,藏品名称,文件名\n2019.3.17,鼎,2019.3.17_front.jpg\nGJ-00123,碗,碗.jpg\n2019.3.17,罐,罐.jpg\n"
    sheets = read_accession_sheets([write_csv(tmp_path, text)])
    assert [row.accession_number for row in sheets.rows] == ["GJ-00123"]
    (problem,) = sheets.problems
    assert problem.code == "sheet_duplicate_accession" and problem.rows == (RowRef("sheet.csv", 2), RowRef("sheet.csv", 4))
    front = sheets.match("2019.3.17_front.jpg")
    assert front.row is None and front.problems == (problem,)
    assert (front.accession_number, front.source) == ("2019.3.17", "file_name")
    jar = sheets.match("罐.jpg")  # its name holds no number: no guess, the problem says why there is no record
    assert (jar.accession_number, jar.source, jar.warnings) == (None, None, (problem,))
    assert sheets.match("碗.jpg").warnings == ()


def test_a_sheet_without_accession_column_is_set_aside_alone(tmp_path: Path) -> None:
    good = write_csv(tmp_path, CSV_SHEET, name="good.csv")
    bad = write_csv(tmp_path, "藏品名称,文件名\n鼎,鼎.jpg\n", name="bad.csv")
    legacy = write_csv(tmp_path, "总登记号\nA1\n", name="old.xls")
    sheets = read_accession_sheets([bad, legacy, good])
    assert [row.accession_number for row in sheets.rows] == ["2019.3.17", "2020.1.1"]
    assert [(p.code, p.sheets, p.level) for p in sheets.sheet_problems] == [
        ("sheet_missing_accession_column", ("bad.csv",), "sheet"), ("sheet_unsupported_format", ("old.xls",), "sheet")]
    assert sheets.sheet_problems[0].details["columns"] == ["藏品名称", "文件名"]
    assert sheets.sheet_problems[1].details["sheets"] == ["old.xls"]
    assert sheets.sheet_names == ("good.csv",)
    # per item, a refused sheet is the lead's run-wide warning; the scan itself just has no row
    assert [w.code for w in sheets.match("鼎.jpg").warnings] == ["no_sheet_row"]


def test_nothing_usable_and_no_sheet_at_all(tmp_path: Path) -> None:
    unreadable = tmp_path / "sheet.csv"
    unreadable.write_bytes(b"\x00\x01\x02" * 100)
    refused = read_accession_sheets([unreadable])
    assert [p.code for p in refused.problems] == ["sheet_unreadable"] and refused.rows == ()
    assert refused.match("鼎.jpg").warnings == ()  # the refused sheet is the warning, once per item, by the flow
    empty = read_accession_sheets([])
    assert empty.problems == () and empty.sheet_names == ()
    guess = empty.match("GJ-00123_正面.jpg")
    assert (guess.accession_number, guess.source, guess.guessed) == ("GJ-00123", "file_name", True)
    (warning,) = guess.warnings
    assert warning.code == "accession_number_guessed" and warning.level == "item"
    assert "No accession sheet was read" in warning.message_en and "GJ-00123" in warning.message_en
    assert "GJ-00123_正面.jpg" in warning.message_en and "推断" in warning.message_zh
    assert warning.details["source"] == "file_name" and warning.details["accession_numbers"] == ["GJ-00123"]


def test_each_way_a_scan_can_get_its_accession_number(tmp_path: Path) -> None:
    sheets = read_accession_sheets([write_csv(tmp_path, CSV_SHEET)])
    named, by_number = sheets.match("2019.3.17_front.jpg"), sheets.match("2020.1.1_back.jpg")
    guessed, nothing = sheets.match("GJ-00777-2.tif"), sheets.match("IMG_0001.JPG")
    assert [(m.source, m.accession_number) for m in (named, by_number, guessed, nothing)] == [
        ("sheet_file_name", "2019.3.17"), ("sheet_accession_number", "2020.1.1"), ("file_name", "GJ-00777"), (None, None)]
    assert [[w.code for w in m.warnings] for m in (named, by_number, guessed, nothing)] == [
        [], [], ["accession_number_guessed"], ["no_sheet_row"]]
    assert "No usable row of the accession sheet (sheet.csv)" in guessed.warnings[0].message_en
    assert "sheet.csv" in nothing.warnings[0].message_en and "文件名" in nothing.warnings[0].message_zh


def test_rows_that_match_no_scan(tmp_path: Path) -> None:
    sheets = read_accession_sheets([write_csv(tmp_path, CSV_SHEET + "2021.9.9,失踪的玉璧,三级,\n")])
    unmatched = sheets.rows_matching_none(["2019.3.17_back.jpg", "青铜鼎_正面.jpg", "IMG_0001.jpg"])
    assert [row.accession_number for row in unmatched] == ["2021.9.9"]


def test_sheet_names_stay_apart_and_each_file_is_read_once(tmp_path: Path) -> None:
    one = write_csv(tmp_path, "总登记号\nA100\n", name="one/sheet.csv")
    two = write_csv(tmp_path, "总登记号\nB200\n", name="two/sheet.csv")
    sheets = read_accession_sheets([one, two, one])  # no root: names would collide
    assert sheets.sheet_names == (str(one), str(two)) and len(sheets.rows) == 2


def test_a_fault_while_reading_one_sheet_costs_only_that_sheet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good, faulty = write_csv(tmp_path, CSV_SHEET, name="good.csv"), write_csv(tmp_path, "总登记号\nA1\n", name="faulty.csv")

    def read_with_a_fault(path: Path, name: str | None = None) -> list:
        if path == faulty:
            raise RecursionError("a fault of ours")  # injected: no sheet makes the real reader fail this way
        return read_sheet_file(path, name)

    monkeypatch.setattr(sheet_set, "read_sheet_file", read_with_a_fault)
    sheets = read_accession_sheets([faulty, good])
    assert len(sheets.rows) == 2
    (problem,) = sheets.sheet_problems
    assert problem.code == "sheet_read_failed" and "RecursionError" in problem.message_en and problem.sheets == ("faulty.csv",)


def test_problems_are_json_ready_and_raise_as_input_rejected(tmp_path: Path) -> None:
    import json

    text = "总登记号,文件名\nA100,a.jpg\nA100,b.jpg\n"
    sheets: SheetSet = read_accession_sheets([write_csv(tmp_path, text), write_csv(tmp_path, "名称\nx\n", name="x.csv")])
    for problem in sheets.problems:
        assert json.loads(json.dumps(problem.details)) == problem.details
        error = problem.as_error()
        assert (error.code, error.message_en, error.message_zh) == (problem.code, problem.message_en, problem.message_zh)
        assert problem.message("en") == problem.message_en and problem.message("zh-CN") == problem.message_zh
    assert sheets.problems[1].details["rows"] == [{"sheet": "sheet.csv", "row": 2}, {"sheet": "sheet.csv", "row": 3}]
