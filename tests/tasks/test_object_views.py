from __future__ import annotations

import pytest

from tasks.object_views import (
    ImageVersion,
    ViewLabel,
    choose_view,
    decided_on,
    seen_digest,
    seen_state,
    takes_place_of,
    view_from_file_name,
    view_from_sheet,
    view_lookup,
)

LOOKUP = view_lookup()


@pytest.mark.parametrize(("name", "code"), [
    ("GZ0001_正面.jpg", "front"), ("GZ0001_背面.tif", "back"), ("GZ0001 反面.jpg", "back"),
    ("2019.3.17_back-1.jpg", "back"),  # a numbered view
    ("2019.3.17_detail.jpg", "detail"), ("GZ1_局部2.jpg", "detail"), ("GZ1_局部 (1).jpg", "detail"),
    ("GZ1_bronze_VERSO.TIF", "back"), ("ＧＺ１＿正面.jpg", "front"),  # full-width forms from Chinese input methods
    ("GZ1_左侧.jpg", "left"), ("GZ1_底部.jpg", "bottom"), ("GZ1_拓片.png", "rubbing"),
    ("GZ0001.jpg", None), ("IMG_0001.jpg", None),
])
def test_views_are_read_from_file_names(name: str, code: str | None) -> None:
    assert view_from_file_name(name, LOOKUP).code == code


def test_an_unknown_label_is_kept_as_written_and_the_table_is_configurable() -> None:
    assert view_from_file_name("GZ1_斜侧.jpg", LOOKUP) == ViewLabel(None, "斜侧")
    assert view_from_file_name("IMG_0001.jpg", LOOKUP) == ViewLabel(None, None)  # a counter is no view
    custom = view_lookup({"oblique": ["斜侧", "45度"]})
    assert view_from_file_name("GZ1_斜侧.jpg", custom).code == "oblique"
    assert view_from_file_name("GZ1_正面.jpg", custom).code is None  # the museum's table replaces the default


def test_the_sheet_names_views_per_file_in_order_and_wins_over_the_file_name() -> None:
    files = ["a.jpg", "b.jpg", "c.jpg"]
    assert view_from_sheet("正面；背面；局部", files, "B.JPG", LOOKUP).code == "back"
    assert view_from_sheet("正面", ["a.jpg"], "a.jpg", LOOKUP).code == "front"
    assert view_from_sheet("正面；背面", files, "b.jpg", LOOKUP).code is None  # counts disagree: no guess
    sheet = view_from_sheet("背面", ["GZ1_正面.jpg"], "GZ1_正面.jpg", LOOKUP)
    assert choose_view(sheet, view_from_file_name("GZ1_正面.jpg", LOOKUP)).code == "back"


def test_what_a_rescan_replaces() -> None:
    current = [(1, "front", "GZ1_正面.jpg"), (2, "back", "GZ1_背面.jpg"), (3, "detail", "GZ1_局部.jpg")]
    front = ViewLabel("front", "正面")
    assert takes_place_of(front, "GZ1_正面_v2.jpg", current, rescan=True) == 1  # same view
    assert takes_place_of(front, "GZ1_正面_v2.jpg", current, rescan=False) is None  # undecided: added
    assert takes_place_of(ViewLabel(None, None), "gz1_背面.JPG", current, rescan=True) == 2  # same name
    assert takes_place_of(ViewLabel(None, None), "gz1_背面.JPG", current, rescan=False) is None  # undecided: kept both
    assert takes_place_of(ViewLabel("detail", "局部"), "GZ1_局部2.jpg", current, rescan=True) is None  # several details are normal
    assert takes_place_of(ViewLabel(None, None), "IMG_2.jpg", [(7, None, "IMG_1.jpg")], rescan=True) == 7
    assert takes_place_of(ViewLabel(None, None), "IMG_2.jpg", [(7, None, "IMG_1.jpg")], rescan=False) is None


def test_a_decision_binds_to_every_image_version_and_the_record_version() -> None:
    images = [ImageVersion(5, "back", "背面", 1, "b" * 64), ImageVersion(4, "front", "正面", 1, "a" * 64)]
    seen = seen_state(images, 1)
    assert [i["view"] for i in seen["images"]] == ["front", "back"]  # view order, not arrival order
    rescanned = seen_state([images[1], ImageVersion(9, "back", "背面", 2, "c" * 64)], 1)
    corrected = seen_state(images, 2)
    assert decided_on(seen, None, seen)
    assert not decided_on(seen, None, rescanned) and not decided_on(seen, None, corrected)
    assert len({seen_digest(seen), seen_digest(rescanned), seen_digest(corrected)}) == 3
    # decisions from before decisions recorded what they saw: only for a one-image object at version 1
    one = seen_state([images[1]], 1)
    assert decided_on(None, "a" * 64, one)
    assert not decided_on(None, "a" * 64, seen) and not decided_on(None, "a" * 64, seen_state([images[1]], 2))
