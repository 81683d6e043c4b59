"""Secret keys kept in files of hex digits (mode 0600), created once and never half-written.

The audit chain's sealing key and the sign-in name key live in such files in the embedded default.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_BYTES = 32


def read_key_file(path: Path) -> bytes | None:
    """The key in ``path``, or None if there is no such file; ValueError if it does not hold hex digits."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    return bytes.fromhex(text)


def create_key_file(path: Path) -> tuple[bytes, bool]:
    """A new random key at ``path`` unless one is there already: (key, created).

    Written to a private temporary file and hard-linked into place: the link fails if another process
    created the key first, so two processes never end up with different keys or read a half-written one.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    created = False
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(KEY_BYTES) + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)
            created = True
        except FileExistsError:
            pass  # another process won the race; use its key
    finally:
        temporary.unlink(missing_ok=True)
    key = read_key_file(path)
    assert key is not None
    return key, created


def load_or_create_key(path: Path) -> bytes:
    key = read_key_file(path)
    return key if key is not None else create_key_file(path)[0]
