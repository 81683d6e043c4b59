"""A fault-injecting HTTP proxy for the S3 tests: a real HTTP server on loopback in front of moto.

Requests pass through unchanged (the Host header too, so signatures stay valid) unless a fault is
queued for them: answer with an S3 error without forwarding (503 SlowDown, 500 InternalError), forward
and then answer with an error (the store did the work but the answer was lost), wait before forwarding
(beyond the client's read timeout, or just slowly), or close the connection without an answer.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "expect"}
_S3_MESSAGES = {"SlowDown": "Please reduce your request rate.", "InternalError": "We encountered an internal error. Please try again.",
                "ServiceUnavailable": "Service is unable to handle request."}


@dataclass(frozen=True)
class Fault:
    kind: str  # "error", "error_after_forwarding", "delay", "drop"
    status: int = 503
    code: str = "SlowDown"
    seconds: float = 0.0

    @classmethod
    def slow_down(cls) -> Fault:
        return cls("error", 503, "SlowDown")

    @classmethod
    def internal_error(cls) -> Fault:
        return cls("error", 500, "InternalError")

    @classmethod
    def lost_answer(cls) -> Fault:
        return cls("error_after_forwarding", 500, "InternalError")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        return cls("delay", seconds=seconds)

    @classmethod
    def drop(cls) -> Fault:
        return cls("drop")


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    fault: str | None  # the fault applied, None when passed straight through


class FaultProxy:
    """Use as a context manager; ``url`` is the endpoint to give the S3 client."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._queue: deque[tuple[Fault, str | None]] = deque()
        self._always: tuple[Fault, str | None, str] | None = None
        self.seen: list[Seen] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, fault: Fault, *, times: int = 1, method: str | None = None) -> None:
        """Apply ``fault`` to the next ``times`` requests (of ``method`` only, if given)."""
        with self._lock:
            self._queue.extend([(fault, method)] * times)

    def always(self, fault: Fault | None, *, method: str | None = None, path_contains: str = "") -> None:
        """Apply ``fault`` to every request (of ``method``, to a path containing ``path_contains``) until
        called again with None."""
        with self._lock:
            self._always = (fault, method, path_contains) if fault is not None else None

    def count(self, method: str | None = None, *, fault: str | None = "any") -> int:
        """Requests seen, by method and by the fault applied ("any" for all, None for clean ones)."""
        with self._lock:
            return sum(1 for s in self.seen if (method is None or s.method == method) and (fault == "any" or s.fault == fault))

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            fault: Fault | None = None
            for index, (queued, only) in enumerate(self._queue):
                if only is None or only == method:
                    fault = queued
                    del self._queue[index]
                    break
            if fault is None and self._always is not None:
                always, only, part = self._always
                if only in (None, method) and part in path:
                    fault = always
            self.seen.append(Seen(method, path, fault.kind if fault else None))
            return fault


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive like a real S3 endpoint; also answers Expect: 100-continue

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET  # noqa: N815

    def _handle(self) -> None:
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        body = self._read_body()
        fault = proxy._take(self.command, self.path)
        if fault is not None and fault.kind == "drop":
            self.close_connection = True  # no answer at all: the client sees the connection closed
            return
        if fault is not None and fault.kind == "error":
            self._send_error(fault)
            return
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        status, headers, data = self._forward(proxy.upstream, body)
        if fault is not None and fault.kind == "error_after_forwarding":
            self._send_error(fault)
            return
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:  # the client gave up waiting (read timeout) and closed its end
            self.close_connection = True

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self, upstream: tuple[str, int], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*upstream, timeout=60)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    conn.putheader(name, value)
            if body or self.command in ("PUT", "POST"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            response = conn.getresponse()
            data = response.read()
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            if self.command != "HEAD":
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"] + [("Content-Length", str(len(data)))]
            return response.status, headers, data
        finally:
            conn.close()

    def _send_error(self, fault: Fault) -> None:
        payload = b"" if self.command == "HEAD" else (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{fault.code}</Code><Message>'
            f"{_S3_MESSAGES.get(fault.code, fault.code)}</Message><RequestId>fault-proxy</RequestId></Error>").encode()
        self.send_response(fault.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)
