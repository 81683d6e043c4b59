"""Review-app accounts: create, list, disable, enable, change passwords and end sign-in sessions.

Every change is audited in the transaction that makes it. A password change and a disable delete all
of that user's ``web_sessions`` rows in the same transaction, so a cookie taken before the change gets
the sign-in page on its next request; there is no window in which the old session still works.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from relicflow.catalogue.models import AuditEntry, User, WebSession, utcnow
from relicflow.errors import CatalogueError, UnknownUser

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue

SIGN_IN_ACTION = "auth:login"
SIGN_IN_FAILED_ACTION = "auth:login-failed"


@dataclass(frozen=True)
class AccountSummary:
    """One row of `relicflow users list`: plain data, usable after the database session closed."""

    username: str
    display_name: str
    role: str
    active: bool
    sessions: int  # live (unexpired) review-app sessions
    last_sign_in: datetime | None  # the newest successful sign-in in the audit log, if any


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UnknownUser(username)
    return user


def _end_sessions(session: Session, user_id: int) -> int:
    return int(session.execute(delete(WebSession).where(WebSession.user_id == user_id)).rowcount or 0)  # type: ignore[attr-defined]


class AccountOperations:
    def add_user(self: Catalogue, username: str, password_hash: str, role: str, *, display_name: str = "",  # type: ignore[misc]
                 actor: str = "cli") -> int:
        with self.session() as s:
            if s.scalar(select(User.id).where(User.username == username)) is not None:
                raise CatalogueError(f"user {username!r} already exists")
            user = User(username=username, password_hash=password_hash, role=role, display_name=display_name or username)
            s.add(user)
            s.flush()
            self.audit(s, actor=actor, action="user:add", details={"username": username, "role": role})
            return user.id

    def user_by_name(self: Catalogue, username: str) -> User | None:  # type: ignore[misc]
        """The active user of that name; None for unknown and for disabled users."""
        with self.read_session() as s:
            return s.scalar(select(User).where(User.username == username, User.active.is_(True)))

    def account(self: Catalogue, username: str) -> User | None:  # type: ignore[misc]
        """The user of that name whether active or disabled (sign-in checks the password of both alike)."""
        with self.read_session() as s:
            return s.scalar(select(User).where(User.username == username))

    def set_password(self: Catalogue, username: str, password_hash: str, *, actor: str = "cli") -> int:  # type: ignore[misc]
        """Replace the password and end every session of that user; returns how many were ended."""
        with self.session() as s:
            user = _user(s, username)
            user.password_hash = password_hash
            ended = _end_sessions(s, user.id)
            self.audit(s, actor=actor, action="user:password", details={"username": username, "sessions_ended": ended})
            return ended

    def disable_user(self: Catalogue, username: str, *, actor: str) -> int:  # type: ignore[misc]
        """Stop the user signing in and end their sessions; returns how many were ended."""
        with self.session() as s:
            user = _user(s, username)
            was_active = bool(user.active)
            user.active = False
            ended = _end_sessions(s, user.id)
            self.audit(s, actor=actor, action="user:disable",
                       details={"username": username, "was_active": was_active, "sessions_ended": ended})
            return ended

    def enable_user(self: Catalogue, username: str, *, actor: str) -> bool:  # type: ignore[misc]
        """Let a disabled user sign in again; False if they were active already."""
        with self.session() as s:
            user = _user(s, username)
            was_active = bool(user.active)
            user.active = True
            self.audit(s, actor=actor, action="user:enable", details={"username": username, "was_active": was_active})
            return not was_active

    def end_sessions(self: Catalogue, username: str, *, actor: str) -> int:  # type: ignore[misc]
        """Sign the user out everywhere (e.g. a lost laptop); returns how many sessions were ended."""
        with self.session() as s:
            user = _user(s, username)
            ended = _end_sessions(s, user.id)
            self.audit(s, actor=actor, action="user:end-sessions", details={"username": username, "sessions_ended": ended})
            return ended

    def set_user_locale(self: Catalogue, user_id: int, locale: str) -> None:  # type: ignore[misc]
        """The review app's language for this user from now on (their language switch); not audited: it
        decides nothing, and every switch would otherwise lengthen the record."""
        with self.session() as s:
            s.execute(update(User).where(User.id == user_id).values(locale=locale))

    def accounts(self: Catalogue) -> list[AccountSummary]:  # type: ignore[misc]
        """Every user, by name, with their live session count and last recorded sign-in."""
        now = utcnow()
        with self.read_session() as s:
            live = dict(s.execute(select(WebSession.user_id, func.count()).where(WebSession.expires_at > now)
                                  .group_by(WebSession.user_id)).all())
            last = dict(s.execute(select(AuditEntry.actor, func.max(AuditEntry.at)).where(AuditEntry.action == SIGN_IN_ACTION)
                                  .group_by(AuditEntry.actor)).all())
            return [AccountSummary(username=u.username, display_name=u.display_name or u.username, role=u.role,
                                   active=bool(u.active), sessions=int(live.get(u.id, 0)), last_sign_in=last.get(u.username))
                    for u in s.scalars(select(User).order_by(User.username))]

    def failed_logins_since(self: Catalogue, since: datetime, *, name_key: str | None = None,  # type: ignore[misc]
                            ip: str | None = None) -> int:
        """Failed sign-ins recorded in the audit log since ``since``, for one typed-in name (by its keyed
        hash, whether or not such a user exists) or one address."""
        with self.read_session() as s:
            q = select(func.count(AuditEntry.id)).where(AuditEntry.action == SIGN_IN_FAILED_ACTION, AuditEntry.at >= since)
            if name_key is not None:
                q = q.where(AuditEntry.details["name_key"].as_string() == name_key)
            if ip is not None:
                q = q.where(AuditEntry.details["ip"].as_string() == ip)
            return s.scalar(q) or 0

    def usernames(self: Catalogue) -> dict[int, str]:  # type: ignore[misc]
        with self.read_session() as s:
            return {uid: name for uid, name in s.execute(select(User.id, User.username))}

    def count_users(self: Catalogue) -> int:  # type: ignore[misc]
        with self.read_session() as s:
            return s.scalar(select(func.count(User.id))) or 0
