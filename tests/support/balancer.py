"""A small round-robin TCP balancer standing in for a Kubernetes Service in front of several replicas.

Each new connection goes to the next backend (no stickiness beyond the connection, as with kube-proxy); a backend
that refuses the connection is skipped, as an endpoint that failed its readiness probe would be.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading

from tests.support.ports import free_port


class RoundRobinBalancer:
    def __init__(self, backends: list[tuple[str, int]] | None = None) -> None:
        self.backends: list[tuple[str, int]] = list(backends or [])
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._counter = itertools.count()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="balancer", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _connect(self) -> socket.socket | None:
        backends = list(self.backends)
        start = next(self._counter)
        for i in range(len(backends)):
            try:
                return socket.create_connection(backends[(start + i) % len(backends)], timeout=5)
            except OSError:
                continue
        return None

    def _serve(self, client: socket.socket) -> None:
        upstream = self._connect()
        if upstream is None:
            client.close()
            return
        self.connections += 1
        upstream.settimeout(None)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            source.close()
