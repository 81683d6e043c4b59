"""How the review app spends its threads: pages on a few, photographs on their own.

Pages are Python work (rows into objects, templates into HTML) that the GIL runs one at a time: threads beyond
a few only add switching, and with twenty reviewers at once the forty threads Starlette allows by default made
every page wait longer (bench/review_queue.py at 100,000 items: queue page p95 504 ms with 40 threads, 267 ms
with 4). Photographs mostly wait for the object store (S3 over the network), so the fifty thumbnails of a
queue page get threads of their own and neither wait behind pages nor hold pages up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request

from relicflow.settings import Settings

T = TypeVar("T")


def configure_threads(app: FastAPI, settings: Settings) -> None:
    """Set the page and photograph thread limits when the server starts (they belong to its event loop)."""

    async def limit_threads() -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.review_page_threads
        app.state.image_threads = anyio.CapacityLimiter(settings.review_image_threads)

    app.router.on_startup.append(limit_threads)


async def on_image_threads(request: Request, read: Callable[[], T]) -> T:
    """Run ``read`` (a catalogue lookup and an object-store read) on the photographs' threads."""
    return await anyio.to_thread.run_sync(read, limiter=getattr(request.app.state, "image_threads", None))
