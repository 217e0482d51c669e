"""Test-only stand-in for cluster DNS and Service ports, loaded by a service process started with this directory on
its PYTHONPATH: TEST_HOSTS_MAP="name:port=127.0.0.1:port,..." maps exactly those (host, port) pairs to loopback at the
resolver (socket.getaddrinfo), and nothing else. The service's own settings, URLs and host names stay exactly those
of the manifest; only the answer to "where is coresdk-controlplane:8080" changes, as cluster DNS would give it.
"""

from __future__ import annotations

import os
import socket
from typing import Any

_MAP: dict[tuple[str, int], tuple[str, int]] = {}
for _item in filter(None, os.environ.get("TEST_HOSTS_MAP", "").split(",")):
    _name, _target = _item.split("=")
    _host, _port = _name.rsplit(":", 1)
    _to_host, _to_port = _target.rsplit(":", 1)
    _MAP[(_host.lower(), int(_port))] = (_to_host, int(_to_port))

_original = socket.getaddrinfo


def _getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    try:
        number = int(port)
    except (TypeError, ValueError):
        number = -1
    if isinstance(name, str) and (name.lower(), number) in _MAP:
        host, port = _MAP[(name.lower(), number)]
    return _original(host, port, *args, **kwargs)


if _MAP:
    socket.getaddrinfo = _getaddrinfo
