"""Technical metadata, the accession sheet, and accession numbers from file names."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageCms, TiffImagePlugin

from relicflow.errors import InputRejected
from tasks.enrichment import (
    AccessionSheet,
    SheetRow,
    accession_number_from_filename,
    read_accession_sheet,
    technical_metadata,
)
from tasks.validation import decode_and_validate

SHEET_ZH = (
    "总登记号,藏品名称,类别,年代,具体年代,材质,级别,完残程度,实际数量,通长(cm),通宽（cm）,通高,质量,来源方式,入藏时间,出土地,著者,"
    "备注,图片文件名\n"
    "2019.3.17,青铜鼎,铜器,商,商代晚期,青铜,一级,完整,1,30.5,25,40.2,12.5kg,发掘,1985年,河南安阳,,重器,"
    "2019.3.17_front.jpg；2019.3.17_back.jpg\n"
    "GJ-00123,青釉碗,瓷器,宋,,瓷,三级,基本完整,1,,,,,征集,2001年,,,,\"GJ-00123-1.tif, GJ-00123-2.tif\"\n"
    "\n"
    "2020.1.8,兰亭序拓本,拓片,清,,纸,一般,完整,1,,,,,捐赠,2020年,,王羲之,,青铜鼎_正面.jpg\n"
)


def _write(tmp_path: Path, text: str, encoding: str, name: str = "sheet.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _as_tab_separated(text: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter="\t", lineterminator="\r\n").writerows(csv.reader(io.StringIO(text)))
    return out.getvalue()


# --- technical metadata -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_technical_metadata_with_exif_and_profile_is_json_ready(tmp_path: Path, fmt: str) -> None:
    base = {
        ExifTags.Base.Make: "Phase One", ExifTags.Base.Model: "IQ4 150MP", ExifTags.Base.Software: "Capture One",
        ExifTags.Base.Artist: "Studio 2", ExifTags.Base.Copyright: "Demo Museum", ExifTags.Base.Orientation: 1,
    }
    sub_ifd = {ExifTags.Base.DateTimeOriginal: "2024:05:20 10:31:00"}
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / f"scan.{fmt.lower()}"
    image = Image.new("RGB", (64, 48), (90, 100, 110))
    if fmt == "TIFF":  # in TIFF these are tags of the image's own IFD, plus an Exif sub-IFD
        tags = TiffImagePlugin.ImageFileDirectory_v2()
        for tag, value in base.items():
            tags[tag] = value
        tags[ExifTags.IFD.Exif] = sub_ifd
        image.save(path, fmt, tiffinfo=tags, icc_profile=srgb, dpi=(600, 600))
    else:
        exif = Image.Exif()
        exif.update(base)
        exif.get_ifd(ExifTags.IFD.Exif).update(sub_ifd)
        image.save(path, fmt, exif=exif, icc_profile=srgb, dpi=(600, 600))
    decoded = decode_and_validate(path, max_pixels=1_000_000)
    metadata = technical_metadata(decoded, size_bytes=path.stat().st_size, sha256="ab" * 32)
    assert json.loads(json.dumps(metadata)) == metadata
    assert metadata["format"] == fmt and (metadata["width"], metadata["height"]) == (64, 48)
    assert metadata["bits_per_sample"] == 8 and metadata["mode"] == "RGB"
    assert metadata["size_bytes"] == path.stat().st_size and metadata["sha256"] == "ab" * 32
    assert metadata["icc_profile"] == "sRGB built-in"
    assert metadata["dpi"] == [600.0, 600.0]
    assert metadata["exif"] == {
        "DateTimeOriginal": "2024:05:20 10:31:00", "Make": "Phase One", "Model": "IQ4 150MP",
        "Software": "Capture One", "Artist": "Studio 2", "Copyright": "Demo Museum",
    }


def test_technical_metadata_without_exif(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("L", (10, 10)).save(path)
    metadata = technical_metadata(decode_and_validate(path, max_pixels=1000), size_bytes=1, sha256="0" * 64)
    assert metadata["exif"] == {} and metadata["icc_profile"] is None and metadata["exif_orientation"] is None


# --- accession sheet ----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030", "gbk", "utf-8", "utf-16"])
def test_chinese_sheet_in_each_encoding(tmp_path: Path, encoding: str) -> None:
    text = _as_tab_separated(SHEET_ZH) if encoding == "utf-16" else SHEET_ZH  # Excel's "Unicode Text"
    sheet = read_accession_sheet(_write(tmp_path, text, encoding))
    assert isinstance(sheet, AccessionSheet)
    assert [row.accession_number for row in sheet.rows] == ["2019.3.17", "GJ-00123", "2020.1.8"]
    assert [row.row_number for row in sheet.rows] == [2, 3, 5]  # the blank line is row 4
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
        "1987.4.12,Greek coins,before 79 CE,\"coins.png, coins_copy.jpg\",A. Lee\n"
    )
    sheet = read_accession_sheet(_write(tmp_path, text, "utf-8"))
    (row,) = sheet.rows
    assert row.row_number == 3
    assert row.accession_number == "1987.4.12"
    assert row.file_names == ("coins.png", "coins_copy.jpg")
    assert row.fields == {"title": "Greek coins", "period": "before 79 CE", "Photographer": "A. Lee"}


def test_lookup_by_file_name_and_accession(tmp_path: Path) -> None:
    sheet = read_accession_sheet(_write(tmp_path, SHEET_ZH, "gb18030"))
    assert sheet.row_for_file("2019.3.17_BACK.JPG") is sheet.rows[0]  # case-insensitive
    assert sheet.row_for_file("2019.3.17_back.tif") is sheet.rows[0]  # same name, other extension
    assert sheet.row_for_file("inbox/batch 7/GJ-00123-2.tif") is sheet.rows[1]
    assert sheet.row_for_file("青铜鼎_正面.jpg") is sheet.rows[2]
    assert sheet.row_for_file("GJ-00123-3.tif") is None
    assert sheet.row_for_accession("gj-00123") is sheet.rows[1]
    assert sheet.row_for_accession(" 2020.1.8 ") is sheet.rows[2]
    assert sheet.row_for_accession("2018.11.30") is None


def test_sheet_without_extension_in_file_names(tmp_path: Path) -> None:
    sheet = read_accession_sheet(_write(tmp_path, "总登记号,文件名\n2019.3.17,2019.3.17_front\n", "utf-8"))
    assert sheet.row_for_file("2019.3.17_front.jpg") == SheetRow(2, "2019.3.17", ("2019.3.17_front",), {})


def test_duplicate_accession_names_the_rows(tmp_path: Path) -> None:
    text = "总登记号,藏品名称\n2019.3.17,鼎\nGJ-00123,碗\n2020.1.8,拓片\n2019.3.17,鼎（重复）\n"
    with pytest.raises(InputRejected) as caught:
        read_accession_sheet(_write(tmp_path, text, "utf-8-sig"))
    error = caught.value
    assert error.code == "sheet_duplicate_accession"
    assert "rows 2 and 5" in error.message_en and "2019.3.17" in error.message_en
    assert "第 2、5 行" in error.message_zh
    assert error.details["duplicates"] == {"2019.3.17": [2, 5]}


def test_file_listed_on_two_rows_is_refused(tmp_path: Path) -> None:
    text = "总登记号,文件名\nA1,x.jpg\nA2,X.JPG\n"
    with pytest.raises(InputRejected) as caught:
        read_accession_sheet(_write(tmp_path, text, "utf-8"))
    assert caught.value.code == "sheet_duplicate_file_name" and "rows 2 and 3" in caught.value.message_en


def test_missing_accession_column(tmp_path: Path) -> None:
    with pytest.raises(InputRejected) as caught:
        read_accession_sheet(_write(tmp_path, "藏品名称,年代\n鼎,商\n", "utf-8"))
    assert caught.value.code == "sheet_missing_accession_column"
    assert "藏品名称" in caught.value.message_en and "总登记号" in caught.value.message_zh


def test_rows_without_accession_number_are_named(tmp_path: Path) -> None:
    with pytest.raises(InputRejected) as caught:
        read_accession_sheet(_write(tmp_path, "总登记号,藏品名称\nA1,鼎\n,碗\n,瓶\n", "utf-8"))
    assert caught.value.code == "sheet_missing_accession_number"
    assert caught.value.details["rows"] == [3, 4] and "rows 3 and 4" in caught.value.message_en


@pytest.mark.parametrize(
    "content",
    [b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4, b"\x81\x30\xff\xfe\x00\x00\xc0\x80" * 50],
    ids=["xlsx-renamed-to-csv", "undecodable-bytes"],
)
def test_unreadable_sheet(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "sheet.csv"
    path.write_bytes(content)
    with pytest.raises(InputRejected) as caught:
        read_accession_sheet(path)
    assert caught.value.code == "sheet_unreadable"


def test_missing_sheet_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(InputRejected) as caught:
        read_accession_sheet(tmp_path / "nowhere.csv")
    assert caught.value.code == "sheet_unreadable"


# --- accession number from a file name ----------------------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("2019.3.17_front.jpg", "2019.3.17"),
        ("2019.3.17_front_detail.TIF", "2019.3.17"),
        ("2019.3.17.jpg", "2019.3.17"),
        ("2019.3.17", "2019.3.17"),
        ("2019.3.17 (1).jpg", "2019.3.17"),
        ("GJ-00123-1.tif", "GJ-00123"),
        ("GJ-00123.tif", "GJ-00123"),
        ("GJ-00123-12.tif", "GJ-00123-12"),
        ("故00123456_正面.tif", "故00123456"),
        ("1987.45.2a_back.png", "1987.45.2a"),
        ("ＧＪ－００１２３_正面.jpg", "GJ-00123"),  # full-width input from a Chinese IME
        ("scans/2019/2019.3.17_front.jpg", "2019.3.17"),
        ("青铜鼎_正面.jpg", None),
        ("IMG_0001.JPG", None),
        ("DSC01234.jpg", None),
        ("front.jpg", None),
        ("", None),
    ],
)
def test_accession_number_from_filename(file_name: str, expected: str | None) -> None:
    assert accession_number_from_filename(file_name) == expected
