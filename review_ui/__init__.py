"""The reviewers' web app (FastAPI + Jinja2): the human content-review gate before minting."""

from __future__ import annotations

from review_ui.app import create_review_app

__all__ = ["create_review_app"]
