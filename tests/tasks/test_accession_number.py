"""Accession numbers from file names: real museum numbers read, years, counters and device names not."""

from __future__ import annotations

import pytest

from tasks.accession_number import accession_number_candidates, accession_number_from_filename


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
        ("Z.123.jpg", "Z.123"),
        ("12345_正面.jpg", "12345"),
        ("410102001000000012345.tif", "410102001000000012345"),  # a 21-digit national census number
        ("青铜鼎_正面.jpg", None),
        ("front.jpg", None),
        ("", None),
    ],
)
def test_museum_numbers_are_read(file_name: str, expected: str | None) -> None:
    assert accession_number_from_filename(file_name) == expected


@pytest.mark.parametrize(
    "file_name",
    [
        "0.jpg", "7.tif", "000.jpg", "GJ-000.jpg", "0.0.0.tif",  # a lone digit, zeros
        "2004.jpg", "1985_正面.jpg", "0001.jpg", "123.tif", "0042 (1).jpg",  # years, counters: digits alone, too few
        "A1.jpg", "photo1.jpg", "未命名-1.tif", "GJ-12.jpg",  # too few digits to name an object
        "20240520.jpg", "20240520_103100.jpg", "202405201031.jpg", "截图20240520103100.png",  # dates and times
        "1716192000.jpg", "1716192000123.jpg",  # seconds and milliseconds since 1970
        "IMG_0001.JPG", "IMG1234.JPG", "DSC01234.jpg", "DSCF0001.JPG", "P1010001.JPG", "R0012345.JPG",  # cameras
        "CIMG0001.JPG", "PICT0001.JPG", "ABCD0001.JPG", "scan0001.tif", "Scan_0003.tif", "image001.png",
        "mmexport1716192000123.jpg",  # WeChat
    ],
)
def test_years_counters_dates_and_device_names_are_not_accession_numbers(file_name: str) -> None:
    assert accession_number_from_filename(file_name) is None


def test_candidates_for_a_sheet_lookup_are_unchecked_and_most_specific_first() -> None:
    assert accession_number_candidates("GJ-00123-1.tif") == ("GJ-00123-1", "GJ-00123")
    assert accession_number_candidates("2019.3.17_front.jpg") == ("2019.3.17_front", "2019.3.17")
    assert accession_number_candidates("dir\\2004 (2).JPG") == ("2004",)
    assert accession_number_candidates("A_12.tif") == ("A_12", "A")
    assert accession_number_candidates(".jpg") == ()
