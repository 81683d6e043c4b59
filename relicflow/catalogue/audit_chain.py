"""The keyed audit chain: every change of record is an entry sealed with HMAC-SHA256 over the previous one.

A plain hash chain proves nothing against someone who can write the database: they edit a row and
recompute every hash after it. Sealing each entry with a key kept outside the database (settings:
``audit_key`` or the key file) means recomputing needs the key. Deleting the newest entries leaves a
valid shorter chain; that is caught by the anchors written outside the database
(``relicflow.audit_record``), not here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relicflow.catalogue.models import AuditEntry, utcnow
from relicflow.errors import AuditKeyMissing
from relicflow.key_files import create_key_file, read_key_file

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue

log = logging.getLogger("relicflow.audit")

GENESIS_HASH = "0" * 64


def entry_body(prev_hash: str, *, at: datetime, actor: str, action: str, item_id: int | None, details: dict[str, Any]) -> bytes:
    """The exact bytes an entry's seal covers (canonical JSON, so both writer and verifier agree)."""
    return json.dumps(
        {"prev": prev_hash, "at": at.isoformat(), "actor": actor, "action": action, "item_id": item_id, "details": details},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str,
    ).encode("utf-8")


def seal(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def legacy_hash(body: bytes) -> str:
    """How entries were chained before migration 0006 (unkeyed); only read, to re-seal old chains."""
    return hashlib.sha256(body).hexdigest()


def key_fingerprint(key: bytes) -> str:
    """Names a key in each entry without revealing it (so a wrong key is reported as such)."""
    return hmac.new(key, b"relicflow audit key id", hashlib.sha256).hexdigest()[:16]


class AuditKey:
    """Where the sealing key lives: given directly (``RELICFLOW_AUDIT_KEY``) or in a file of hex digits.

    The file is created (mode 0600) only for a catalogue whose chain has no sealed entry yet; a missing
    key for an existing chain is an error, never silently replaced (that would fork the chain).
    """

    def __init__(self, *, secret: bytes | None = None, path: Path | None = None) -> None:
        if secret is None and path is None:
            raise ValueError("an audit key needs a secret or a key file")
        if secret is not None and len(secret) < 16:
            raise ValueError("the audit key must be at least 16 bytes")
        self._secret = secret
        self.path = path
        self._loaded: bytes | None = None  # a key file is read once; it never changes under a running process

    @classmethod
    def from_settings(cls, settings: Any) -> AuditKey:
        secret = settings.audit_key.get_secret_value().encode("utf-8") if settings.audit_key is not None else None
        return cls(secret=secret, path=None if secret is not None else settings.audit_key_file)

    @classmethod
    def beside_database(cls, database_url: str) -> AuditKey | None:
        """The embedded default's key file, next to a SQLite catalogue (where ``Settings`` puts it too)."""
        if database_url.startswith("sqlite:///") and database_url != "sqlite:///:memory:":
            return cls(path=Path(database_url.removeprefix("sqlite:///")).parent / "secrets" / "audit-key")
        return None

    def load(self) -> bytes | None:
        if self._secret is not None:
            return self._secret
        if self._loaded is not None:
            return self._loaded
        self._loaded = self._read()
        return self._loaded

    def _read(self) -> bytes | None:
        assert self.path is not None
        try:
            key = read_key_file(self.path)
        except ValueError:
            raise AuditKeyMissing(f"the audit key file {self.path} does not hold hex digits") from None
        if key is not None and len(key) < 16:
            raise AuditKeyMissing(f"the audit key in {self.path} is shorter than 16 bytes")
        return key

    def create(self) -> bytes:
        """Write a new random key (or take the one another process created at the same moment)."""
        assert self.path is not None
        key, created = create_key_file(self.path)
        if created:
            log.warning("created a new audit key at %s: keep a copy away from the catalogue's backups", self.path)
        self._loaded = key
        return key

    def describe(self) -> str:
        return "RELICFLOW_AUDIT_KEY" if self._secret is not None else str(self.path)


@dataclass(frozen=True)
class ChainBreak:
    """The first entry the chain does not vouch for, and why."""

    entry_id: int
    reason: str  # changed | unlinked | unsealed | other_key
    detail: str


@dataclass(frozen=True)
class ChainHead:
    entry_id: int
    entry_hash: str
    entries: int


class AuditOperations:
    """Writing and checking the chain; mixed into :class:`~relicflow.catalogue.Catalogue`."""

    audit_key: AuditKey | None

    def _sealing_key(self: Catalogue, session: Session) -> bytes:  # type: ignore[misc]
        if self.audit_key is None:
            raise AuditKeyMissing("no audit key is configured for this catalogue (set RELICFLOW_AUDIT_KEY or audit_key_file)")
        key = self.audit_key.load()
        if key is not None:
            return key
        if self.audit_key.path is not None and session.scalar(select(AuditEntry.id).where(AuditEntry.key_id.is_not(None)).limit(1)) is None:
            return self.audit_key.create()
        raise AuditKeyMissing(f"the audit key is missing ({self.audit_key.describe()}) but the catalogue's record is sealed "
                              "with one: restore the key file; a new key would break the record")

    def audit(self: Catalogue, session: Session, *, actor: str, action: str, item_id: int | None = None,  # type: ignore[misc]
              details: dict[str, Any] | None = None) -> AuditEntry:
        """Append one sealed entry in the caller's transaction (it commits with the change it records)."""
        details = details or {}
        self.serialise_writers(session)
        key = self._sealing_key(session)
        prev = session.scalar(select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)) or GENESIS_HASH
        at = utcnow()
        entry = AuditEntry(at=at, actor=actor, action=action, item_id=item_id, details=details, prev_hash=prev,
                           entry_hash=seal(key, entry_body(prev, at=at, actor=actor, action=action, item_id=item_id, details=details)),
                           key_id=key_fingerprint(key))
        session.add(entry)
        session.flush()
        return entry

    def audit_chain_break(self: Catalogue) -> ChainBreak | None:  # type: ignore[misc]
        """The first entry that is changed, unlinked from the one before, unsealed or sealed with another key."""
        key = self.audit_key.load() if self.audit_key is not None else None
        if key is None:
            with self.read_session() as s:
                first = s.scalar(select(func.min(AuditEntry.id)))
            if first is None:
                return None
            return ChainBreak(first, "other_key", "the audit key is missing, so no entry can be checked")
        key_id = key_fingerprint(key)
        prev = GENESIS_HASH
        columns = (AuditEntry.id, AuditEntry.at, AuditEntry.actor, AuditEntry.action, AuditEntry.item_id, AuditEntry.details,
                   AuditEntry.prev_hash, AuditEntry.entry_hash, AuditEntry.key_id)
        with self.read_session() as s:  # plain rows, streamed: a million entries need neither ORM objects nor memory
            for entry_id, at, actor, action, item_id, details, prev_hash, entry_hash, entry_key_id in s.execute(
                    select(*columns).order_by(AuditEntry.id).execution_options(yield_per=5000)):
                if entry_key_id is None:
                    return ChainBreak(entry_id, "unsealed", "entry is not sealed with the audit key")
                if entry_key_id != key_id:
                    return ChainBreak(entry_id, "other_key", f"entry is sealed with another key ({entry_key_id}, expected {key_id})")
                if prev_hash != prev:
                    return ChainBreak(entry_id, "unlinked", "entry does not follow the one before it: entries were removed or inserted")
                body = entry_body(prev, at=at, actor=actor, action=action, item_id=item_id, details=details)
                if not hmac.compare_digest(seal(key, body), entry_hash):
                    return ChainBreak(entry_id, "changed", "entry content does not match its seal: it was edited")
                prev = entry_hash
        return None

    def verify_audit_chain(self: Catalogue) -> int | None:  # type: ignore[misc]
        """Id of the first entry the chain does not vouch for, or None when it holds."""
        broken = self.audit_chain_break()
        return None if broken is None else broken.entry_id

    def audit_head(self: Catalogue) -> ChainHead | None:  # type: ignore[misc]
        with self.read_session() as s:
            row = s.execute(select(AuditEntry.id, AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)).first()
            if row is None:
                return None
            count = s.scalar(select(func.count(AuditEntry.id))) or 0
            return ChainHead(row[0], row[1], count)

    def chain_head_in(self: Catalogue, session: Session) -> tuple[int, str] | None:  # type: ignore[misc]
        """(id, seal) of the newest entry as ``session`` sees it: what a batch built in it carries."""
        row = session.execute(select(AuditEntry.id, AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)).first()
        return (row[0], row[1]) if row else None

    def audit_entries_of(self: Catalogue, action: str) -> list[AuditEntry]:  # type: ignore[misc]
        with self.read_session() as s:
            return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))

    def audit_page(self: Catalogue, *, before_id: int | None = None, limit: int = 50) -> list[AuditEntry]:  # type: ignore[misc]
        """Up to ``limit`` entries, newest first, older than ``before_id`` (keyset paging: the same cost on
        any page of any length of record)."""
        with self.read_session() as s:
            q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
            if before_id is not None:
                q = q.where(AuditEntry.id < before_id)
            return list(s.scalars(q))

    def audit_entry_count(self: Catalogue) -> int:  # type: ignore[misc]
        with self.read_session() as s:
            return s.scalar(select(func.count(AuditEntry.id))) or 0

    def audit_batches(self: Catalogue, *, size: int = 1000) -> Iterator[list[AuditEntry]]:  # type: ignore[misc]
        """Every entry, oldest first, ``size`` at a time, each batch in its own short read (for exports)."""
        after = 0
        while True:
            with self.read_session() as s:
                batch = list(s.scalars(select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id).limit(size)))
            if not batch:
                return
            yield batch
            after = batch[-1].id

    def audit_entry_hash(self: Catalogue, entry_id: int) -> str | None:  # type: ignore[misc]
        return self.audit_entry_hashes([entry_id]).get(entry_id)

    def audit_entry_hashes(self: Catalogue, entry_ids: Sequence[int]) -> dict[int, str]:  # type: ignore[misc]
        """The seals of those of ``entry_ids`` the chain holds."""
        ids = sorted(set(entry_ids))
        found: dict[int, str] = {}
        with self.read_session() as s:
            for start in range(0, len(ids), 1000):
                q = select(AuditEntry.id, AuditEntry.entry_hash).where(AuditEntry.id.in_(ids[start:start + 1000]))
                found.update({entry_id: entry_hash for entry_id, entry_hash in s.execute(q)})
        return found

    def entry_is_sealed(self: Catalogue, entry: AuditEntry) -> bool:  # type: ignore[misc]
        """One entry's own seal (content and key); links to its neighbours are :meth:`audit_chain_break`'s job."""
        key = self.audit_key.load() if self.audit_key is not None else None
        if key is None or entry.key_id != key_fingerprint(key):
            return False
        body = entry_body(entry.prev_hash, at=entry.at, actor=entry.actor, action=entry.action, item_id=entry.item_id, details=entry.details)
        return hmac.compare_digest(seal(key, body), entry.entry_hash)

    def reseal_legacy_entries(self: Catalogue) -> int:  # type: ignore[misc]
        """Seal entries written before the chain was keyed (migration 0006) under the current key.

        Only when the old, unkeyed chain still holds: a chain already broken is left as it is, for
        `relicflow audit verify` to report. Returns how many entries were re-sealed.
        """
        with self.session() as s:
            self.serialise_writers(s)
            if s.scalar(select(AuditEntry.id).where(AuditEntry.key_id.is_(None)).limit(1)) is None:
                return 0
            key = self._sealing_key(s)
            entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))
            prev = GENESIS_HASH
            for e in entries:
                if e.key_id is not None:
                    log.error("audit log mixes sealed and unsealed entries (entry %d); not re-sealing", e.id)
                    return 0
                body = entry_body(prev, at=e.at, actor=e.actor, action=e.action, item_id=e.item_id, details=e.details)
                if e.prev_hash != prev or legacy_hash(body) != e.entry_hash:
                    log.error("the unkeyed audit chain is broken at entry %d; not re-sealing it", e.id)
                    return 0
                prev = e.entry_hash
            legacy_head = prev
            prev = GENESIS_HASH
            key_id = key_fingerprint(key)
            # Two passes: entry_hash is unique, so first move every hash out of the way.
            for e in entries:
                e.entry_hash = f"resealing-{e.id}"
            s.flush()
            for e in entries:
                e.prev_hash = prev
                e.entry_hash = seal(key, entry_body(prev, at=e.at, actor=e.actor, action=e.action, item_id=e.item_id, details=e.details))
                e.key_id = key_id
                prev = e.entry_hash
            s.flush()
            self.audit(s, actor="relicflow", action="audit:resealed", details={"entries": len(entries), "legacy_head": legacy_head})
            log.warning("sealed %d audit entries written before the chain was keyed (old head %s)", len(entries), legacy_head)
            return len(entries)
