"""Fixtures of the review app tests; they live in tests/review_world.py so tests can import its helpers."""

from __future__ import annotations

from review_world import password_hash, signed_in, world  # noqa: F401 - fixtures, found by pytest here
