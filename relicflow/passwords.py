"""Password hashing for reviewer accounts (argon2id via pwdlib; passlib is unmaintained).

The CLI hashes with these when it creates users; the review app verifies with them at login.
"""

from __future__ import annotations

import secrets
from functools import cache

from pwdlib import PasswordHash
from pwdlib.exceptions import PwdlibError

_hasher = PasswordHash.recommended()  # argon2id with pwdlib's current recommended parameters

# No 0/O, 1/l/I: a generated password is read off a terminal and typed by a person.
READABLE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"

# Verified against when the user name is unknown, so a failed login costs the same either way and
# the response time does not tell which user names exist.
@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """An argon2id hash (PHC string, salt included) to store in ``users.password_hash``."""
    if not password:
        raise ValueError("password must not be empty")
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when ``password`` matches; False for a wrong password and for a missing or malformed hash."""
    if not password_hash:
        burn_verify_time(password)
        return False
    try:
        return _hasher.verify(password, password_hash)
    except (PwdlibError, ValueError):
        return False


def burn_verify_time(password: str) -> None:
    """Spend as long as a real verification would (used when there is no user to verify against)."""
    _hasher.verify(password or "-", _dummy_hash())


def generate_password(groups: int = 4, group_length: int = 4) -> str:
    """A random password people can read aloud and type, e.g. ``k7pq-3mxa-tr9d-wj2e`` (about 80 bits)."""
    return "-".join("".join(secrets.choice(READABLE_ALPHABET) for _ in range(group_length)) for _ in range(groups))
