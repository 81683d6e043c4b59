"""Server-side login sessions on the catalogue's ``web_sessions`` table, and CSRF tokens.

The cookie carries only a random 32-byte token; the table keeps its SHA-256, so a leaked database dump
holds no usable cookie. Every login gets a fresh token (no session fixation) and logout deletes the row,
so a cookie copied before logout stops working (Starlette's signed-cookie sessions cannot do that; see
shared/reference.md). Each session has its own CSRF token for the forms it renders.

A session ends, on the server, after ``session_idle_timeout_s`` without a request and ``session_max_age_s``
after sign-in however busy (settings). The clock is injectable so tests move time instead of sleeping.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from starlette.requests import Request
from starlette.responses import Response

from relicflow.catalogue import Catalogue
from relicflow.catalogue.models import User, WebSession, utcnow

SESSION_COOKIE = "relicflow_session"
LOGIN_CSRF_COOKIE = "relicflow_login_csrf"
LOGIN_FORM_LIFETIME = timedelta(hours=1)
TOKEN_BYTES = 32
_MAX_TOKEN_CHARS = 128  # anything longer is not one of ours; don't hash attacker-sized input
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,128}")


@dataclass(frozen=True)
class ActiveSession:
    """The signed-in user as a request sees them; plain data, safe to use after the DB session closed."""

    id_hash: str
    user_id: int
    username: str
    display_name: str
    role: str
    csrf_token: str
    expires_at: datetime
    locale: str | None = None  # the language the user chose; None: not chosen yet


@dataclass(frozen=True)
class SessionLookup:
    """What a cookie token turned out to be: a live session, one that just ran out, or nothing of ours."""

    session: ActiveSession | None
    expired: bool = False  # the token named a session that timed out (idle or absolute); it is deleted now


def new_token() -> str:
    """A random token (32 bytes, URL-safe base64) for session ids and CSRF tokens."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; False when either side is missing.

    Compares bytes: ``secrets.compare_digest`` raises TypeError on non-ASCII ``str``, and form fields
    can contain anything.
    """
    if not expected or not given:
        return False
    return secrets.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def is_https(request: Request) -> bool:
    """Whether the browser reached us over https (directly, or as a trusted proxy's X-Forwarded-Proto says)."""
    return request.url.scheme == "https"


class SessionStore:
    """Creates, finds and ends review-app sessions in the catalogue database."""

    def __init__(self, catalogue: Catalogue, *, max_age: timedelta = timedelta(hours=12),
                 idle_timeout: timedelta = timedelta(minutes=30), clock: Callable[[], datetime] = utcnow) -> None:
        self.catalogue = catalogue
        self.max_age = max_age
        self.idle_timeout = idle_timeout
        self.clock = clock
        # last_seen_at is written at most this often per session, so most requests only read
        self.touch_every = min(timedelta(seconds=60), idle_timeout / 10)

    def start(self, user_id: int, *, replacing: str | None = None, audit: dict[str, Any] | None = None,
              password_hash: str | None = None) -> str | None:
        """A new session for ``user_id``; returns the cookie token (only its hash is stored).

        ``replacing`` is the token the browser sent, if any: that row is deleted, so an id planted in
        the browser before login never becomes a signed-in session. Expired rows are swept here too.
        ``audit`` (actor/action/details) is written in the same transaction as the session row.
        ``password_hash`` is the hash the password was just verified against: if the account was disabled
        or its password changed since (which ends its sessions), no session starts and None is returned.
        """
        token = new_token()
        now = self.clock()
        with self.catalogue.session() as s:
            if password_hash is not None:
                # Locks the user row on PostgreSQL, so a concurrent password change or disable waits for
                # this session to exist and then deletes it (SQLite's write lock already orders them).
                current = s.scalar(select(User).where(User.id == user_id).with_for_update())
                if current is None or not current.active or current.password_hash != password_hash:
                    return None
            if replacing and len(replacing) <= _MAX_TOKEN_CHARS:
                s.execute(delete(WebSession).where(WebSession.id_hash == hash_token(replacing)))
            s.execute(delete(WebSession).where(WebSession.expires_at <= now))
            s.add(WebSession(id_hash=hash_token(token), user_id=user_id, csrf_token=new_token(),
                             created_at=now, expires_at=now + self.max_age, last_seen_at=now))
            if audit is not None:
                self.catalogue.audit(s, **audit)
        return token

    def find(self, token: str | None) -> ActiveSession | None:
        """The live session for a cookie token, or None (see :meth:`lookup`)."""
        return self.lookup(token).session

    def lookup(self, token: str | None) -> SessionLookup:
        """The live session for a cookie token: not past its absolute end, not idle too long, user still
        active. A session that ran out is deleted and reported as ``expired``; this request counts as
        activity for a live one."""
        if not token or len(token) > _MAX_TOKEN_CHARS:
            return SessionLookup(None)
        with self.catalogue.read_session() as s:  # most requests only read: never take the write lock for them
            row = s.execute(
                select(WebSession, User).join(User, User.id == WebSession.user_id)
                .where(WebSession.id_hash == hash_token(token))
            ).first()
        if row is None:
            return SessionLookup(None)
        web_session, user = row
        now = self.clock()
        last_seen = web_session.last_seen_at or web_session.created_at
        timed_out = (web_session.expires_at <= now or now - web_session.created_at >= self.max_age
                     or now - last_seen >= self.idle_timeout)
        if timed_out or not user.active:
            with self.catalogue.session() as s:
                s.execute(delete(WebSession).where(WebSession.id_hash == web_session.id_hash))
            return SessionLookup(None, expired=timed_out and user.active)
        if now - last_seen >= self.touch_every:
            with self.catalogue.session() as s:
                s.execute(update(WebSession).where(WebSession.id_hash == web_session.id_hash).values(last_seen_at=now))
        return SessionLookup(ActiveSession(
            id_hash=web_session.id_hash, user_id=user.id, username=user.username,
            display_name=user.display_name or user.username, role=user.role,
            csrf_token=web_session.csrf_token, expires_at=web_session.expires_at, locale=user.locale,
        ))

    def end(self, token: str | None, *, audit: dict[str, Any] | None = None) -> bool:
        """Delete the session row (logout); True if there was one."""
        if not token or len(token) > _MAX_TOKEN_CHARS:
            return False
        with self.catalogue.session() as s:
            row = s.get(WebSession, hash_token(token))
            if row is None:
                return False
            s.delete(row)
            if audit is not None:
                self.catalogue.audit(s, **audit)
            return True


def set_session_cookie(response: Response, token: str, *, secure: bool, max_age_s: int) -> None:
    """The session cookie lives as long as the session may (the server ends it sooner when idle)."""
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age_s, path="/",
                        httponly=True, samesite="lax", secure=secure)


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)


def login_form_token(request: Request) -> str:
    """The pre-session CSRF token for the anonymous login form: reuse the cookie's if well-formed."""
    current = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if _TOKEN_SHAPE.fullmatch(current):
        return current
    return new_token()


def set_login_csrf_cookie(response: Response, token: str, *, secure: bool) -> None:
    """Double-submit cookie for the login form; scoped to /login and short-lived."""
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=int(LOGIN_FORM_LIFETIME.total_seconds()), path="/login",
                        httponly=True, samesite="lax", secure=secure)


def clear_login_csrf_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login", httponly=True, samesite="lax", secure=secure)
