"""Times as staff read them: in the installation's time zone, with the zone shown.

The catalogue keeps UTC (``relicflow.catalogue.models.UTCDateTime``); every place a person reads a time
(CLI tables, the review app, reports) goes through :func:`format_local`, so a reviewer in Beijing never has
to add eight hours in their head, and a printed record still says which zone it is in.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def time_zone(name: str) -> ZoneInfo:
    """The zone for a setting value; a clear error for a name the tz database does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"time_zone: {name!r} is not a time zone name of the tz database (e.g. Asia/Shanghai, "
                         f"Europe/London, UTC) / 不是有效的时区名称（例如 Asia/Shanghai）") from exc


def utc_offset_label(value: datetime) -> str:
    """'UTC+08:00': unambiguous where abbreviations are not (CST is both China and US Central)."""
    offset = value.utcoffset()
    if offset is None:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def to_local(value: datetime, zone: ZoneInfo | str) -> datetime:
    tz = time_zone(zone) if isinstance(zone, str) else zone
    if value.tzinfo is None:  # the catalogue only hands out aware times; a naive one is UTC by our convention
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(tz)


def format_local(value: datetime | None, zone: ZoneInfo | str, *, seconds: bool = False, show_zone: bool = True) -> str:
    """'2026-11-22 09:45 UTC+08:00' for a UTC time shown in Asia/Shanghai; '' for no time."""
    if value is None:
        return ""
    local = to_local(value, zone)
    text = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} {utc_offset_label(local)}" if show_zone else text
