"""HTTP/1.1 over a plain socket: the request target and headers go out exactly as written.

HTTP libraries normalise what they send (dot segments, percent-encoding, header names), which is precisely what an
attacker does not do; these tests must send the bytes an attacker would.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        line, _, rest = data.partition(b"\r\n")
        size = int(line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


def raw_request(
    port: int,
    method: str,
    target: str | bytes,
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    chunks: list[bytes] | None = None,
    host: str = "127.0.0.1",
    source: str | None = None,
    timeout: float = 15.0,
) -> RawResponse:
    """One request on a fresh connection (Connection: close); chunks sends a chunked body."""
    target_bytes = target if isinstance(target, bytes) else target.encode("utf-8", "surrogateescape")
    lines = [method.encode() + b" " + target_bytes + b" HTTP/1.1", f"Host: {host}:{port}".encode()]
    for k, v in headers or []:
        lines.append(f"{k}: {v}".encode())
    if body is not None:
        lines.append(f"Content-Length: {len(body)}".encode())
    if chunks is not None:
        lines.append(b"Transfer-Encoding: chunked")
    lines.append(b"Connection: close")
    payload = b"\r\n".join(lines) + b"\r\n\r\n"
    if body is not None:
        payload += body
    with socket.create_connection((host, port), timeout=timeout, source_address=(source, 0) if source else None) as s:
        s.sendall(payload)
        if chunks is not None:
            try:
                for chunk in chunks:
                    s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                s.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered and closed before the whole body was sent
        data = bytearray()
        while True:
            try:
                part = s.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            data += part
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = [(k.strip(), v.strip()) for k, _, v in (h.partition(":") for h in header_lines)]
    response = RawResponse(int(status_line.split()[1]), parsed, rest)
    if (response.header("Transfer-Encoding") or "").lower() == "chunked":
        response.body = _dechunk(rest)
    return response
