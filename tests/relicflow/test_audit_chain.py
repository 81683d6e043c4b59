"""The keyed chain itself: sealing, the key's life, and re-sealing chains written before it was keyed."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from relicflow.catalogue import Catalogue
from relicflow.catalogue.audit_chain import GENESIS_HASH, AuditKey, entry_body
from relicflow.catalogue.migrate import alembic_config
from relicflow.errors import AuditKeyMissing
from relicflow.settings import load_settings


def _legacy_catalogue(path: Path, entries: int, *, break_at: int | None = None) -> Catalogue:
    """A catalogue at revision 0005 whose audit log was chained the old, unkeyed way."""
    catalogue = Catalogue(f"sqlite:///{path}")
    command.upgrade(alembic_config(catalogue.engine), "0005")
    prev = GENESIS_HASH
    with catalogue.engine.begin() as conn:
        for n in range(1, entries + 1):
            at = datetime(2026, 1, 1, 9, n, tzinfo=timezone.utc)
            details = {"n": n}
            digest = hashlib.sha256(entry_body(prev, at=at, actor="ingest", action="ingest:start", item_id=None, details=details)).hexdigest()
            if n == break_at:
                details = {"n": -n}  # edited after it was chained
            conn.execute(text("INSERT INTO audit_log (id, at, actor, action, item_id, details, prev_hash, entry_hash) "
                              "VALUES (:id, :at, 'ingest', 'ingest:start', NULL, :details, :prev, :hash)"),
                         {"id": n, "at": at, "details": f'{{"n": {details["n"]}}}', "prev": prev, "hash": digest})
            prev = digest
    return catalogue


def test_a_chain_from_before_keying_is_resealed_under_the_key_when_it_still_holds(tmp_path: Path) -> None:
    catalogue = _legacy_catalogue(tmp_path / "old.sqlite3", 5)
    catalogue.migrate()
    assert catalogue.verify_audit_chain() is None
    entries = catalogue.audit_entries()
    assert len(entries) == 6 and entries[-1].action == "audit:resealed" and entries[-1].details["entries"] == 5
    assert len({e.key_id for e in entries}) == 1 and entries[0].key_id is not None
    catalogue.migrate()  # a second start changes nothing
    assert len(catalogue.audit_entries()) == 6
    catalogue.dispose()


def test_a_broken_chain_from_before_keying_is_not_resealed_and_is_reported(tmp_path: Path) -> None:
    catalogue = _legacy_catalogue(tmp_path / "old.sqlite3", 5, break_at=3)
    catalogue.migrate()
    broken = catalogue.audit_chain_break()
    assert broken is not None and broken.entry_id == 1 and broken.reason == "unsealed"
    with catalogue.session() as s:  # the studio keeps working; the break stays reported until someone looks
        catalogue.audit(s, actor="ingest", action="ingest:start")
    assert catalogue.audit_chain_break() == broken
    catalogue.dispose()


def test_a_missing_key_for_a_sealed_chain_is_an_error_never_a_new_key(tmp_path: Path) -> None:
    catalogue = Catalogue(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    catalogue.migrate()
    with catalogue.session() as s:
        catalogue.audit(s, actor="cli", action="user:add")
    key_file = tmp_path / "secrets" / "audit-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key_file.unlink()
    catalogue.dispose()
    catalogue = Catalogue(f"sqlite:///{tmp_path / 'c.sqlite3'}")  # the next process to start
    with pytest.raises(AuditKeyMissing, match="restore the key file"):
        with catalogue.session() as s:
            catalogue.audit(s, actor="cli", action="user:add")
    assert not key_file.exists()
    broken = catalogue.audit_chain_break()
    assert broken is not None and broken.reason == "other_key"
    catalogue.dispose()


def test_settings_key_seals_and_the_wrong_key_does_not_verify(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    right = Catalogue(url, audit_key=AuditKey(secret=b"0123456789abcdef-right"))
    right.migrate()
    with right.session() as s:
        right.audit(s, actor="cli", action="user:add", details={"username": "li"})
    assert right.verify_audit_chain() is None
    assert not (tmp_path / "secrets").exists()  # a configured key never writes a key file
    wrong = Catalogue(url, audit_key=AuditKey(secret=b"0123456789abcdef-wrong"))
    assert wrong.audit_chain_break().reason == "other_key"  # type: ignore[union-attr]
    right.dispose()
    wrong.dispose()


def test_settings_refuse_a_short_audit_key_and_default_the_key_file_into_the_data_dir(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 16"):
        load_settings(data_dir=tmp_path, audit_key="short")
    assert load_settings(data_dir=tmp_path).audit_key_file == (tmp_path / "secrets" / "audit-key").resolve()
