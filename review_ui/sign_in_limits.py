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
from dataclasses import dataclass
from datetime import timedelta

from relicflow.catalogue import Catalogue
from relicflow.catalogue.models import utcnow
from relicflow.key_files import load_or_create_key
from relicflow.settings import Settings

log = logging.getLogger("relicflow.review_ui")

NAME_KEY_FILE = "sign-in-name.key"
ADDRESS_FACTOR = 3  # an address may fail this many times the per-name limit (several people behind one NAT)


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
