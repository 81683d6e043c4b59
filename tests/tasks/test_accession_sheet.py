"""One accession sheet file: CSV in the encodings Excel writes, XLSX cells as a person sees them, and
which problems set aside a row and which the whole sheet."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest

from relicflow.errors import InputRejected
from sheet_builders import rewrite_zip_member, write_csv, write_xlsx
from tasks import sheet_files
from tasks.accession_sheet import AccessionSheet, SheetRow, read_accession_sheet, read_sheet_file
from tasks.sheet_problems import RowRef

SHEET_ZH = (
    "总登记号,藏品名称,类别,年代,具体年代,材质,级别,完残程度,实际数量,通长(cm),通宽（cm）,通高,质量,来源方式,入藏时间,出土地,著者,"
    "备注,图片文件名\n"
    "2019.3.17,青铜鼎,铜器,商,商代晚期,青铜,一级,完整,1,30.5,25,40.2,12.5kg,发掘,1985年,河南安阳,,重器,"
    "2019.3.17_front.jpg；2019.3.17_back.jpg\n"
    "GJ-00123,青釉碗,瓷器,宋,,瓷,三级,基本完整,1,,,,,征集,2001年,,,,\"GJ-00123-1.tif, GJ-00123-2.tif\"\n"
    "\n"
    "2020.1.8,兰亭序拓本,拓片,清,,纸,一般,完整,1,,,,,捐赠,2020年,,王羲之,,青铜鼎_正面.jpg\n"
)


def _as_tab_separated(text: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter="\t", lineterminator="\r\n").writerows(csv.reader(io.StringIO(text)))
    return out.getvalue()


# --- CSV ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030", "gbk", "utf-8", "utf-16"])
def test_chinese_sheet_in_each_encoding(tmp_path: Path, encoding: str) -> None:
    text = _as_tab_separated(SHEET_ZH) if encoding == "utf-16" else SHEET_ZH  # Excel's "Unicode Text"
    sheet = read_accession_sheet(write_csv(tmp_path, text, encoding))
    assert isinstance(sheet, AccessionSheet) and sheet.name == "sheet.csv" and sheet.problems == ()
    assert [row.accession_number for row in sheet.rows] == ["2019.3.17", "GJ-00123", "2020.1.8"]
    assert [row.row_number for row in sheet.rows] == [2, 3, 5]  # the blank line is row 4
    assert {row.sheet for row in sheet.rows} == {"sheet.csv"}
    ding = sheet.rows[0]
    assert ding.file_names == ("2019.3.17_front.jpg", "2019.3.17_back.jpg")
    assert ding.fields["title"] == "青铜鼎"
    assert ding.fields["period"] == "商代晚期" and ding.fields["年代"] == "商"  # 具体年代 wins, 年代 kept
    assert ding.fields["length_cm"] == "30.5" and ding.fields["width_cm"] == "25" and ding.fields["height_cm"] == "40.2"
    assert {key: ding.fields[key] for key in ("category", "material", "grade", "condition", "quantity", "weight",
                                               "acquisition", "acquisition_date", "findspot")} == {
        "category": "铜器", "material": "青铜", "grade": "一级", "condition": "完整", "quantity": "1",
        "weight": "12.5kg", "acquisition": "发掘", "acquisition_date": "1985年", "findspot": "河南安阳",
    }
    assert ding.fields["备注"] == "重器"  # unknown column under its own header
    assert "creator" not in ding.fields  # empty cells are left out
    assert "accession_number" not in ding.fields and "file_name" not in ding.fields
    assert sheet.rows[1].fields["period"] == "宋"  # no 具体年代: 年代 fills period
    assert sheet.rows[1].file_names == ("GJ-00123-1.tif", "GJ-00123-2.tif")
    assert sheet.rows[2].fields["creator"] == "王羲之"


def test_english_headers_and_a_title_row_above_the_header(tmp_path: Path) -> None:
    text = (
        "Demo Museum collection export 2024-05-20,,\n"
        "Accession Number,Title,Period,File Name,Photographer\n"
        "1987.4.12,Greek coins,before 79 CE,\"coins.png, coins_copy.jpg, COINS.PNG\",A. Lee\n"
    )
    sheet = read_accession_sheet(write_csv(tmp_path, text))
    (row,) = sheet.rows
    assert row.row_number == 3
    assert row.accession_number == "1987.4.12"
    assert row.file_names == ("coins.png", "coins_copy.jpg")  # a name written twice counts once
    assert row.fields == {"title": "Greek coins", "period": "before 79 CE", "Photographer": "A. Lee"}


def test_lookup_by_file_name_and_accession(tmp_path: Path) -> None:
    sheet = read_accession_sheet(write_csv(tmp_path, SHEET_ZH, "gb18030"))
    assert sheet.row_for_file("2019.3.17_BACK.JPG") is sheet.rows[0]  # case-insensitive
    assert sheet.row_for_file("2019.3.17_back.tif") is sheet.rows[0]  # same name, other extension
    assert sheet.row_for_file("inbox/batch 7/GJ-00123-2.tif") is sheet.rows[1]
    assert sheet.row_for_file("青铜鼎_正面.jpg") is sheet.rows[2]
    assert sheet.row_for_file("GJ-00123-3.tif") is None
    assert sheet.row_for_accession("gj-00123") is sheet.rows[1]
    assert sheet.row_for_accession(" 2020.1.8 ") is sheet.rows[2]
    assert sheet.row_for_accession("2018.11.30") is None


def test_sheet_without_extension_in_file_names(tmp_path: Path) -> None:
    sheet = read_accession_sheet(write_csv(tmp_path, "总登记号,文件名\n2019.3.17,2019.3.17_front\n"))
    assert sheet.row_for_file("2019.3.17_front.jpg") == SheetRow(2, "2019.3.17", ("2019.3.17_front",), {}, "sheet.csv")


# --- rows set aside, the rest used ----------------------------------------------------------------


def test_duplicate_accession_sets_aside_only_those_rows(tmp_path: Path) -> None:
    text = "总登记号,藏品名称,文件名\n2019.3.17,鼎,a.jpg\nGJ-00123,碗,b.jpg\n2020.1.8,拓片,\n2019.3.17,鼎（重复）,c.jpg\n"
    sheet = read_accession_sheet(write_csv(tmp_path, text, "utf-8-sig"))
    assert [row.accession_number for row in sheet.rows] == ["GJ-00123", "2020.1.8"]
    (problem,) = sheet.problems
    assert problem.code == "sheet_duplicate_accession" and problem.level == "row"
    assert problem.rows == (RowRef("sheet.csv", 2), RowRef("sheet.csv", 5))
    assert problem.accession_numbers == ("2019.3.17",) and problem.file_names == ("a.jpg", "c.jpg")
    assert "rows 2 and 5" in problem.message_en and "2019.3.17" in problem.message_en and "sheet.csv" in problem.message_en
    assert "第 2、5 行" in problem.message_zh and "2019.3.17" in problem.message_zh
    assert [(r.row.row_number, r.problems) for r in sheet.refused] == [(2, (problem,)), (5, (problem,))]
    assert sheet.row_for_file("a.jpg") is None and sheet.row_for_accession("2019.3.17") is None


def test_file_listed_on_two_rows_sets_those_rows_aside(tmp_path: Path) -> None:
    sheet = read_accession_sheet(write_csv(tmp_path, "总登记号,文件名\nA100,x.jpg\nA200,X.JPG; y.jpg\nA300,z.jpg\n"))
    assert [row.accession_number for row in sheet.rows] == ["A300"]
    (problem,) = sheet.problems
    assert problem.code == "sheet_duplicate_file_name" and "rows 2 and 3" in problem.message_en
    assert problem.file_names == ("x.jpg",) and problem.accession_numbers == ("A100", "A200")


def test_rows_without_accession_number_are_set_aside_one_by_one(tmp_path: Path) -> None:
    # row 4 is how a merged 总登记号 cell comes out: the second line of the object has no number of its own
    sheet = read_accession_sheet(write_csv(tmp_path, "总登记号,藏品名称,文件名\nA1,鼎,a.jpg\n,碗,b.jpg\n,,b2.jpg\n"))
    assert [row.accession_number for row in sheet.rows] == ["A1"]
    assert [p.code for p in sheet.problems] == ["sheet_missing_accession_number"] * 2
    assert [p.rows for p in sheet.problems] == [(RowRef("sheet.csv", 3),), (RowRef("sheet.csv", 4),)]
    assert sheet.problems[1].file_names == ("b2.jpg",)
    assert "Row 4 of sheet.csv" in sheet.problems[1].message_en and "b2.jpg" in sheet.problems[1].message_en
    assert "第 4 行" in sheet.problems[1].message_zh


# --- sheets set aside whole -------------------------------------------------------------------------


def test_missing_accession_column(tmp_path: Path) -> None:
    with pytest.raises(InputRejected) as caught:
        read_accession_sheet(write_csv(tmp_path, "藏品名称,年代\n鼎,商\n"))
    assert caught.value.code == "sheet_missing_accession_column"
    assert "藏品名称" in caught.value.message_en and "总登记号" in caught.value.message_zh
    assert caught.value.details["columns"] == ["藏品名称", "年代"]


def test_header_without_rows_is_an_empty_sheet(tmp_path: Path) -> None:
    with pytest.raises(InputRejected) as caught:
        read_accession_sheet(write_csv(tmp_path, "总登记号,藏品名称\n\n,\n"))
    assert caught.value.code == "sheet_empty" and "sheet.csv" in caught.value.message_en


@pytest.mark.parametrize(
    "content",
    [b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4, b"\x81\x30\xff\xfe\x00\x00\xc0\x80" * 50,
     b"%PDF-1.7\n" + bytes(range(256)) * 4],
    ids=["broken-zip-named-csv", "undecodable-bytes", "pdf-named-csv"],
)
def test_unreadable_sheet(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "sheet.csv"
    path.write_bytes(content)
    with pytest.raises(InputRejected) as caught:
        read_accession_sheet(path)
    assert caught.value.code == "sheet_unreadable"
    assert "CSV UTF-8" in caught.value.message_en and "CSV UTF-8" in caught.value.message_zh


def test_missing_sheet_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(InputRejected) as caught:
        read_accession_sheet(tmp_path / "nowhere.csv")
    assert caught.value.code == "sheet_unreadable"


@pytest.mark.parametrize("suffix", [".xls", ".ods", ".numbers", ".et", ".xlsb"])
def test_formats_we_do_not_read_are_refused_with_what_to_do(tmp_path: Path, suffix: str) -> None:
    path = write_csv(tmp_path, "总登记号\nA1\n", name=f"藏品{suffix}")  # refused by name, whatever is inside
    with pytest.raises(InputRejected) as caught:
        read_accession_sheet(path)
    assert caught.value.code == "sheet_unsupported_format"
    assert suffix in caught.value.message_en and ".xlsx" in caught.value.message_en
    assert "CSV UTF-8" in caught.value.message_en and "另存为" in caught.value.message_zh


def test_legacy_excel_content_under_a_csv_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sheet.csv"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512))  # the OLE2 header of .xls and .et
    with pytest.raises(InputRejected) as caught:
        read_accession_sheet(path)
    assert caught.value.code == "sheet_unsupported_format" and ".xls" in caught.value.message_en


def test_opendocument_renamed_to_xlsx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<office:document-content/>")
    with pytest.raises(InputRejected) as caught:
        read_accession_sheet(path)
    assert caught.value.code == "sheet_unsupported_format" and "OpenDocument" in caught.value.message_en


def test_zip_that_is_no_workbook_and_a_cut_workbook_are_unreadable(tmp_path: Path) -> None:
    other = tmp_path / "photos.xlsx"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("a.txt", "hello")
    cut = write_xlsx(tmp_path, [["总登记号"], ["A1"]], name="cut.xlsx")
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # still being copied, or a broken download
    for path in (other, cut):
        with pytest.raises(InputRejected) as caught:
            read_accession_sheet(path)
        assert caught.value.code == "sheet_unreadable", path


def test_workbook_that_unpacks_too_large_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_xlsx(tmp_path, [["总登记号"], ["A1"], *[[f"A{i}", "x" * 200] for i in range(2, 5000)]])
    monkeypatch.setattr(sheet_files, "_MAX_UNPACKED_BYTES", 512 * 1024)  # the real limit is 256 MB
    with pytest.raises(InputRejected) as caught:
        read_accession_sheet(path)
    assert caught.value.code == "sheet_unreadable" and "unpacks to" in caught.value.message_en


# --- XLSX -------------------------------------------------------------------------------------------


def test_xlsx_cells_read_as_a_person_sees_them(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path,
        [["Demo 博物馆 藏品清单"],
         ["总登记号", "藏品名称", "实际数量", "入藏时间", "通长", "质量", "备注", "文件名"],
         ["00123", "青釉碗", 1985, dt.date(1985, 3, 1), 30.5, 0.1 + 0.2, True, "00123_正面.jpg"],
         [],
         [2019, "鼎", 7, dt.datetime(2020, 1, 2, 3, 4, 5), 12, 1.5, 123, "2019.jpg"]],
        formats={"F5": "0.00", "G5": "00000"},
    )
    # Other programs store whole numbers as 1985.0; Excel shows 1985.
    rewrite_zip_member(path, "xl/worksheets/sheet1.xml", b"<v>1985</v>", b"<v>1985.0</v>")
    sheet = read_accession_sheet(path)
    assert sheet.encoding == "xlsx" and sheet.worksheet == "藏品" and sheet.name == "sheet.xlsx"
    bowl, ding = sheet.rows
    assert (bowl.row_number, bowl.accession_number, bowl.file_names) == (3, "00123", ("00123_正面.jpg",))
    assert bowl.fields == {"title": "青釉碗", "quantity": "1985", "acquisition_date": "1985-03-01", "length_cm": "30.5",
                           "weight": "0.3", "备注": "TRUE"}
    assert (ding.row_number, ding.accession_number) == (5, "2019")  # the empty row 4 still counts
    assert ding.fields["acquisition_date"] == "2020-01-02 03:04:05"
    assert ding.fields["weight"] == "1.50" and ding.fields["备注"] == "00123"  # number formats 0.00 and 00000


def test_xlsx_with_a_wrong_stored_size_is_read_whole(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, [["总登记号", "名称"], ["A100", "鼎"], ["A200", "碗"]])
    rewrite_zip_member(path, "xl/worksheets/sheet1.xml", b'<dimension ref="A1:B3"', b'<dimension ref="A1"')
    assert [row.accession_number for row in read_accession_sheet(path).rows] == ["A100", "A200"]


def test_every_visible_worksheet_with_accession_numbers_is_a_sheet(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path, [["总登记号", "名称"], ["A100", "鼎"]], name="book.xlsx",
        worksheets={"说明": [["本表由藏品管理系统导出"]], "第二批": [["总登记号", "名称"], ["B200", "碗"]],
                    "代码表": [["总登记号"], ["Z999"]]},
        hidden=["代码表"],
    )
    sheets = read_sheet_file(path)
    assert [(s.name, s.worksheet) for s in sheets] == [("book.xlsx [藏品]", "藏品"), ("book.xlsx [第二批]", "第二批")]
    assert [row.ref for s in sheets for row in s.rows] == [RowRef("book.xlsx [藏品]", 2), RowRef("book.xlsx [第二批]", 2)]


def test_workbook_without_accession_column_names_the_columns_found(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, [["藏品名称", "年代"], ["鼎", "商"]])
    with pytest.raises(InputRejected) as caught:
        read_accession_sheet(path)
    assert caught.value.code == "sheet_missing_accession_column" and caught.value.details["columns"] == ["藏品名称", "年代"]


def test_content_decides_csv_saved_under_an_xlsx_name_is_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "总登记号,名称\nA100,鼎\n", name="sheet.xlsx")
    assert [row.accession_number for row in read_accession_sheet(path).rows] == ["A100"]
