"""A new catalogue for a test, copied from the session's migrated template (the ``migrated_template`` fixture
in tests/conftest.py) instead of replaying every migration."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path


def copy_migrated(template: Path, target: Path) -> None:
    """A migrated catalogue at ``target``: the session's template, with an identity of its own (a catalogue's
    identity is made when it is created), and no audit entries yet (so no audit key is needed beside it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    with closing(sqlite3.connect(target)) as db, db:
        assert db.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)
        db.execute("UPDATE catalogue_identity SET uuid = ?", (str(uuid.uuid4()),))
