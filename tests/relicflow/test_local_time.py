from __future__ import annotations

from datetime import datetime, timezone

import pytest

from relicflow.local_time import format_local, time_zone
from relicflow.settings import load_settings


def test_utc_time_is_shown_in_shanghai_with_its_offset() -> None:
    at = datetime(2026, 11, 21, 23, 30, tzinfo=timezone.utc)
    assert format_local(at, "Asia/Shanghai") == "2026-11-22 07:30 UTC+08:00"
    assert format_local(at, "UTC") == "2026-11-21 23:30 UTC+00:00"
    assert format_local(at, "America/St_Johns", seconds=True) == "2026-11-21 20:00:00 UTC-03:30"
    assert format_local(None, "Asia/Shanghai") == ""


def test_a_misspelt_zone_is_refused_when_settings_are_read(tmp_path) -> None:
    assert load_settings(data_dir=tmp_path).time_zone == "Asia/Shanghai"
    with pytest.raises(ValueError, match="Asia/Shanghai"):
        load_settings(data_dir=tmp_path, time_zone="Asia/Shangai")
    with pytest.raises(ValueError):
        time_zone("../etc/passwd")
