"""`relicflow review`: the review app with the review gate's resume hook, served by one process or several.

Several (``review_workers``): pages are CPU-bound Python, one core per process, so a busy review app needs a
process per core. uvicorn's supervisor starts each worker afresh, and a worker cannot be handed Python objects
by the command that started it: it reads the command's settings from the environment (secrets included; the
workers' environment is the command's own) and builds the same app. Everything the workers share lives in
the catalogue: sessions, sign-in limits, decisions, the audit log. Two workers that decide the last items of
one ingest run at the same moment may both ask Prefect to resume its gate; the second ask finds the gate no
longer paused and does nothing (flows.review_gate.resume_gate).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from relicflow.catalogue import Catalogue
from relicflow.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("relicflow.review_ui")

WORKER_SETTINGS_ENV = "RELICFLOW_REVIEW_WORKER_SETTINGS"


def review_app(settings: Settings) -> FastAPI:
    """The review app as `relicflow review` serves it: the last decision of an ingest run resumes its gate, and
    the review record is re-verified on schedule."""
    from flows.review_gate import resume_gate_for_ingest_run
    from relicflow.storage import open_store
    from review_ui.app import create_review_app

    catalogue = Catalogue.from_settings(settings)
    app = create_review_app(settings, catalogue, open_store(settings), watch_record=True,
                            on_batch_decided=lambda run_id: resume_gate_for_ingest_run(settings, run_id))
    app.router.on_shutdown.append(catalogue.dispose)
    return app


def settings_for_workers(settings: Settings) -> str:
    """The settings as JSON a worker rebuilds them from, secrets in clear (``model_dump`` would mask them)."""
    values: dict[str, Any] = settings.model_dump(mode="json")
    for name, value in settings:
        if isinstance(value, SecretStr):
            values[name] = value.get_secret_value()
    return json.dumps(values)


def worker_app() -> FastAPI:
    """uvicorn's factory in each worker process (``review_workers`` > 1)."""
    return review_app(Settings(**json.loads(os.environ[WORKER_SETTINGS_ENV])))


def serve_review(settings: Settings) -> None:
    """Serve the review app on ``review_host:review_port`` until interrupted (blocking)."""
    import uvicorn

    from review_ui.app import SERVER_OPTIONS

    options: dict[str, Any] = {"host": settings.review_host, "port": settings.review_port, "log_level": "info", **SERVER_OPTIONS}
    log.info("review app on %s (%d process%s)", settings.review_url, settings.review_workers, "" if settings.review_workers == 1 else "es")
    if settings.review_workers == 1:
        uvicorn.run(review_app(settings), workers=1, **options)
        return
    os.environ[WORKER_SETTINGS_ENV] = settings_for_workers(settings)
    config = uvicorn.Config("relicflow.review_server:worker_app", factory=True, workers=settings.review_workers, **options)
    from uvicorn.supervisors import Multiprocess

    Multiprocess(config, sockets=[listening_socket(settings.review_host, settings.review_port)]).run()


def listening_socket(host: str, port: int) -> socket.socket:
    """The workers' shared listening socket, made as TCP explicitly.

    uvicorn's own (``Config.bind_socket``) leaves the protocol number 0; the connections it accepts inherit it,
    and asyncio then never turns Nagle's algorithm off for them, so every keep-alive request after the first
    waited ~40 ms for a delayed ACK (uvicorn issue #3149; 44 ms for /healthz here, against 0.1 ms in one process).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock
