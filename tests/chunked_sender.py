"""A raw-socket HTTP/1.1 client that sends a huge chunked body made on the fly (never held in memory)
and stops as soon as the server answers or closes: what an abusive sender of the issuer API does."""

from __future__ import annotations

import select
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

CHUNK = b"x" * (1024 * 1024)


@dataclass
class Outcome:
    status: int | None  # None: the server closed without a status line
    sent: int  # body bytes that left this process
    head: bytes  # the server's answer (its start)


def send_chunked(url: str, path: str, headers: dict[str, str], total_bytes: int, *, timeout_s: float = 60) -> Outcome:
    """POST ``total_bytes`` of body with Transfer-Encoding: chunked, 1 MiB per chunk, until answered."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout_s)
    sent = 0
    answer = b""
    try:
        head = [f"POST {path} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}", "Transfer-Encoding: chunked",
                *(f"{k}: {v}" for k, v in headers.items())]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        frame = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
        while sent < total_bytes:
            readable, writable, _ = select.select([sock], [sock], [], timeout_s)
            if readable:
                break  # the server answered (or closed) before the body was done
            if not writable:
                break  # the server stopped reading and never answered: reported as status None below
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                break
            sent += len(CHUNK)
        else:
            sock.sendall(b"0\r\n\r\n")
        try:
            while len(answer) < 65536:  # the whole answer: these refusals close the connection after it
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, socket.timeout):
            pass
    finally:
        sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return Outcome(status, sent, answer[:4000])
