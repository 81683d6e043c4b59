"""Times on the command line: in the installation's time zone with its offset (``local_time``), never bare UTC.

`--json` outputs keep ISO 8601 UTC for machines; text for people goes through these.
"""

from __future__ import annotations

import re
from datetime import datetime

from relicflow.local_time import format_local

# ISO 8601 times with an explicit offset, as the English details of reports embed them (e.g. anchors)
_ISO_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)")


def shown_time(value: datetime | str | None, zone: str, *, seconds: bool = False) -> str:
    """A catalogue time (or its ISO 8601 text) in ``zone``, e.g. '2026-11-22 09:45 UTC+08:00'; '-' for none."""
    if value is None or value in ("", "-"):
        return "-"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value  # not a time after all: shown as it is
    return format_local(value, zone, seconds=seconds)


def local_times_in(text: str, zone: str) -> str:
    """``text`` with every ISO 8601 time that carries an offset rewritten in ``zone`` (seconds kept)."""
    return _ISO_TIME.sub(lambda m: shown_time(m.group(0), zone, seconds=True), text)
