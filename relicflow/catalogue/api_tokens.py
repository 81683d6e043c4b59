"""Personal tokens for the review app's JSON API.

A token is shown once when made (``relicflow tokens create``); the catalogue keeps its SHA-256 only, like
the review app's session cookies. It acts as its user with the user's current role, so disabling the
user or changing their role takes effect on the next call; revoking is audited and immediate.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from relicflow.catalogue.models import ApiToken, User, utcnow
from relicflow.errors import UnknownUser

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue

TOKEN_PREFIX = "rfapi_"  # recognisable in a leaked config file or a secret scanner
_TOKEN_SHAPE = re.compile(r"rfapi_[A-Za-z0-9_-]{43}")
LAST_USED_GRANULARITY = timedelta(minutes=5)  # note use at most this often: calls must not all take the write lock


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class ApiPrincipal:
    """Who an API call acts as: plain data, safe after the database session closed."""

    user_id: int
    username: str
    display_name: str
    role: str
    token_id: int


@dataclass(frozen=True)
class ApiTokenInfo:
    id: int
    username: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiTokenOperations:
    def create_api_token(self: Catalogue, username: str, *, label: str = "", expires_in: timedelta | None = None,  # type: ignore[misc]
                         actor: str) -> tuple[int, str]:
        """(token id, the token itself): the only time the token is seen in full."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.session() as s:
            user = s.scalar(select(User).where(User.username == username, User.active.is_(True)))
            if user is None:
                raise UnknownUser(username)
            now = utcnow()
            row = ApiToken(token_hash=_hash(token), user_id=user.id, label=label.strip()[:200], created_at=now,
                           expires_at=now + expires_in if expires_in else None)
            s.add(row)
            s.flush()
            self.audit(s, actor=actor, action="api_token:create", details={"token": row.id, "user": username, "label": row.label,
                                                                            "expires_at": row.expires_at.isoformat() if row.expires_at else None})
            return row.id, token

    def api_principal(self: Catalogue, token: str | None) -> ApiPrincipal | None:  # type: ignore[misc]
        """The active user a bearer token acts as, or None (unknown, revoked, expired, user disabled)."""
        if not token or not _TOKEN_SHAPE.fullmatch(token):
            return None
        now = utcnow()
        with self.read_session() as s:
            row = s.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                            .where(ApiToken.token_hash == _hash(token))).first()
        if row is None:
            return None
        api_token, user = row
        if api_token.revoked_at is not None or (api_token.expires_at is not None and api_token.expires_at <= now) or not user.active:
            return None
        if api_token.last_used_at is None or now - api_token.last_used_at >= LAST_USED_GRANULARITY:
            with self.session() as s:
                s.execute(update(ApiToken).where(ApiToken.id == api_token.id).values(last_used_at=now))
        return ApiPrincipal(user.id, user.username, user.display_name or user.username, user.role, api_token.id)

    def api_tokens(self: Catalogue) -> list[ApiTokenInfo]:  # type: ignore[misc]
        with self.read_session() as s:
            rows = s.execute(select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id))
            return [ApiTokenInfo(t.id, name, t.label, t.created_at, t.expires_at, t.revoked_at, t.last_used_at) for t, name in rows]

    def revoke_api_token(self: Catalogue, token_id: int, *, actor: str) -> bool:  # type: ignore[misc]
        """True if the token was live and is revoked now."""
        with self.session() as s:
            row = s.get(ApiToken, token_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = utcnow()
            self.audit(s, actor=actor, action="api_token:revoke", details={"token": token_id})
            return True
