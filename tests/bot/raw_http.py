"""An upload that stops as soon as the server answers, to see how much of a body a server reads.

httpx sends the whole body before it reads the answer, so it cannot tell a
server that refused early from one that read everything first; a raw socket can.
"""

from __future__ import annotations

import select
import socket
from urllib.parse import urlsplit

CHUNK = 64 * 1024


def send_chunked(url: str, headers: dict[str, str], total_bytes: int) -> tuple[int, int]:
    """POST up to ``total_bytes`` of spaces, chunked; returns (status, bytes sent before the answer came)."""
    parts = urlsplit(url)
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Transfer-Encoding: chunked", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    chunk = f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n"
    sent = 0
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while sent < total_bytes:
            readable, writable, _ = select.select([connection], [connection], [], 60)
            if readable:
                break
            if writable:
                try:
                    connection.sendall(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += CHUNK
        else:
            connection.sendall(b"0\r\n\r\n")
        status_line = connection.makefile("rb").readline().decode()
    return int(status_line.split()[1]), sent
