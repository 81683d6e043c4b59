"""How often sign-in may fail before it pauses, counted so that the pause tells nothing about which
user names exist.

Failures are counted per typed-in name, whether or not an account has it, and per client address (the
peer, or what a trusted proxy says; see ``Settings.trusted_proxies``). The count lives in the audit log,
so a pause survives a restart. The typed-in name is stored only as an HMAC under a random key kept in the
data dir (``sign-in-name.key``): people type their password into the name field, and a plain or unkeyed
hash of it in the audit log could be guessed back offline.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from relicflow.catalogue import Catalogue
from relicflow.catalogue.models import utcnow
from relicflow.settings import Settings

log = logging.getLogger("relicflow.review_ui")

NAME_KEY_FILE = "sign-in-name.key"
ADDRESS_FACTOR = 3  # an address may fail this many times the per-name limit (several people behind one NAT)


def load_or_create_key(path: Path) -> bytes:
    """The 32-byte key at ``path``, created (mode 0600) on first use.

    Written to a private temporary file and hard-linked into place: the link fails if another process
    created the key first, so two processes never end up with different keys or read a half-written one.
    """
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)
            log.info("created the sign-in name key %s", path)
        except FileExistsError:
            pass  # another process won the race; use its key
    finally:
        temporary.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


@dataclass(frozen=True)
class SignInLimits:
    """The per-name and per-address failure limits of one review app."""

    catalogue: Catalogue
    settings: Settings
    key: bytes

    @classmethod
    def for_app(cls, settings: Settings, catalogue: Catalogue) -> SignInLimits:
        return cls(catalogue=catalogue, settings=settings, key=load_or_create_key(settings.data_dir / NAME_KEY_FILE))

    def name_key(self, username: str) -> str:
        """The typed-in name as the audit log keeps it: HMAC-SHA256 under this installation's key."""
        return hmac.new(self.key, username.encode("utf-8"), hashlib.sha256).hexdigest()

    def paused(self, name_key: str, ip: str) -> bool:
        """Too many recent failures for this typed-in name, or from this address.

        The same question is asked for every name, existing or not, so a 429 never tells them apart.
        """
        since = utcnow() - timedelta(seconds=self.settings.login_failure_window_s)
        limit = self.settings.login_max_failures
        if self.catalogue.failed_logins_since(since, name_key=name_key) >= limit:
            return True
        return bool(ip) and self.catalogue.failed_logins_since(since, ip=ip) >= ADDRESS_FACTOR * limit
