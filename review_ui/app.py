"""The reviewers' web app: FastAPI + Jinja2, server-rendered forms, sessions in the catalogue.

``create_review_app`` builds it from explicit dependencies (tests pass a real catalogue and store);
``relicflow review`` (a child of ``relicflow serve``) serves it with uvicorn: relicflow/review_server.py.

Whose ``X-Forwarded-For``/``X-Forwarded-Proto`` count is decided in the app (``Settings.trusted_proxies``,
empty by default), not by the server: uvicorn runs with its own proxy-header handling off, since by
default it would believe any loopback peer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from datetime import timedelta

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from relicflow.catalogue import Catalogue
from relicflow.settings import Settings
from review_ui.queue_counts import QueueCounts
from review_ui import audit_log
from review_ui.access import ACCESS_HANDLERS, check_access
from review_ui.record_watch import RecordWatch
from review_ui.api import ApiRefused, api_refused
from review_ui.api import router as api_router
from review_ui.bulk_routes import router as bulk_router
from review_ui.routes import router
from review_ui.sessions import SessionStore
from review_ui.sign_in_limits import SignInLimits
from review_ui.threads import configure_threads
from review_ui.web import EXCEPTION_HANDLERS, HERE, ResponseHeadersMiddleware, ReviewContext, make_templates

if TYPE_CHECKING:
    from relicflow.storage import ObjectStore

log = logging.getLogger("relicflow.review_ui")

# How uvicorn must serve the app: no proxy-header handling of its own (see the module docstring), no
# Server header.
SERVER_OPTIONS: dict[str, Any] = {"proxy_headers": False, "server_header": False}


def create_review_app(settings: Settings, catalogue: Catalogue, store: ObjectStore, *,
                      on_batch_decided: Callable[[int], None] | None = None, watch_record: bool = False,
                      sessions: SessionStore | None = None) -> FastAPI:
    """The review app over an already migrated catalogue.

    ``on_batch_decided(ingest_run_id)`` is called after a decision leaves no undecided item in its
    ingest run (e.g. to resume the run's review-gate flow). It runs after the reviewer's response; if it
    raises, the error is logged and the decisions stand (``Catalogue.gates_ready_to_resume`` finds runs
    whose gate still waits). ``watch_record``: verify the review record now and on the settings'
    schedule, and show administrators a banner while it does not hold. ``sessions``: the session store
    (default: the settings' idle timeout and lifetime on the real clock; tests pass one with their own clock).

    Every route's action is checked against the role matrix by ``review_ui.access.check_access``, an app-wide
    dependency: a route it does not know is refused for everyone.
    """
    watch = RecordWatch(catalogue, store, interval_s=settings.audit_verify_interval_s) if watch_record else None
    # OpenAPI documents the JSON API only (the pages are left out of it); no docs UI: it would need a CDN's scripts
    app = FastAPI(title="relicflow review API", version="1", docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json",
                  exception_handlers={**EXCEPTION_HANDLERS, **ACCESS_HANDLERS, ApiRefused: api_refused},
                  dependencies=[Depends(check_access)])
    if sessions is None:
        sessions = SessionStore(catalogue, max_age=timedelta(seconds=settings.session_max_age_s),
                                idle_timeout=timedelta(seconds=settings.session_idle_timeout_s))
    app.state.review = ReviewContext(settings=settings, catalogue=catalogue, store=store,
                                     sessions=sessions, templates=make_templates(),
                                     sign_in_limits=SignInLimits.for_app(settings, catalogue),
                                     on_batch_decided=on_batch_decided, record_watch=watch,
                                     queue_counts=QueueCounts(catalogue, max_age_s=settings.review_counts_max_age_s))
    configure_threads(app, settings)
    if watch is not None:
        app.router.on_startup.append(watch.start)
        app.router.on_shutdown.append(watch.stop)
    app.add_middleware(ResponseHeadersMiddleware)
    # Added last, so it runs first: the headers, cookies, audit entries and sign-in limits that follow all
    # see the same client address and scheme. uvicorn's own implementation, fed only our setting.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    app.include_router(bulk_router)
    app.include_router(api_router)
    app.include_router(audit_log.router)
    return app
