"""Access-token signatures made in signer processes of their own, fed through a socket by the event loop.

An RSA signature releases the GIL while it is computed, but a signing thread must take the GIL back to hand its
result over, and the event loop thread, serving every connection, holds it nearly all the time: each signature in
a thread pool cost the process about twice its own CPU in GIL handoffs (measured: 0.51 ms of CPU per grant with
signing in two threads against 0.25 ms for the signature alone), and a waiting thread is what every grant waited
for. A signer process has a GIL of its own. The loop writes each signing input to a signer's socket and reads
the signatures back as they come (no thread in this process takes part); a signer answers in order.

A signer learns a key the first time it is asked to sign with it: the key's PEM goes over the socket pair this
process made for that child (never a file, an argument or the environment). A signer that dies fails the
signatures it owed (SignerUnavailable: 503, no token leaves) and is replaced at the next request. A signer exits
when its socket closes, so it never outlives the control plane.

Frames both ways: 4-byte big-endian length, then one kind byte and the body.
  to a signer:   K kid \n alg \n PEM   (learn a key; no answer)
                 S kid \n signing input  (sign; answered in order)
  from a signer: O signature  |  E reason
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys

from controlplane.keys.signing import SigningKey, load_pem_key
from coresdk.children import interrupts_ignored

log = logging.getLogger("coresdk.controlplane")
_LEN = 4
_READ = 1 << 16


class SignerUnavailable(Exception):
    """A signer process died or could not start: the signature was not made (the request is answered 503)."""


def _frame(kind: bytes, body: bytes) -> bytes:
    return (len(body) + 1).to_bytes(_LEN, "big") + kind + body


def _frames(buffer: bytearray) -> list[bytes]:
    """The complete frames at the start of buffer (removed from it); a partial one stays for the next read."""
    out: list[bytes] = []
    start = 0
    end = len(buffer)
    while end - start >= _LEN:
        size = int.from_bytes(buffer[start : start + _LEN], "big")
        if end - start - _LEN < size:
            break
        out.append(bytes(buffer[start + _LEN : start + _LEN + size]))
        start += _LEN + size
    del buffer[:start]
    return out


class _Link(asyncio.Protocol):
    """This process's end of one signer's socket: the signatures it owes, in the order they were asked for."""

    def __init__(self) -> None:
        # (the caller's future of the compact JWS, the signing input it is for)
        self.owed: collections.deque[tuple[asyncio.Future[str], bytes]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        for frame in _frames(self._buffer):
            if not self.owed:  # an answer nobody asked for: the signer is not speaking this protocol
                self._fail("signer answered out of turn")
                return
            future, signing_input = self.owed.popleft()
            if future.done():  # the caller gave up (cancelled): the answer is dropped
                continue
            if frame[:1] == b"O":
                future.set_result(SigningKey.compact(signing_input, frame[1:]))
            else:
                future.set_exception(SignerUnavailable(f"signer refused: {frame[1:].decode(errors='replace')}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(f"signer process gone ({exc or 'socket closed'})")

    def _fail(self, reason: str) -> None:
        self.lost = True
        while self.owed:
            future, _ = self.owed.popleft()
            if not future.done():
                future.set_exception(SignerUnavailable(reason))
        if self.transport is not None:
            self.transport.close()


class _Signer:
    """One signer process and the link to it."""

    def __init__(self, proc: subprocess.Popen[bytes], link: _Link) -> None:
        self.proc = proc
        self.link = link
        self.kids: set[str] = set()
        self._outgoing: list[bytes] = []  # frames written together once the loop has run what is ready

    @property
    def alive(self) -> bool:
        """False once its socket is gone (a dead signer's end closes with it): no system call per request."""
        return not self.link.lost

    def sign(self, key: SigningKey, payload: bytes) -> asyncio.Future[str]:
        loop = asyncio.get_running_loop()
        if not self._outgoing:
            loop.call_soon(self._flush)
        if key.kid not in self.kids:
            self._outgoing.append(_frame(b"K", f"{key.kid}\n{key.alg}\n".encode() + key.pem()))
            self.kids.add(key.kid)
        signing_input = key.signing_input(payload)
        future: asyncio.Future[str] = loop.create_future()
        self.link.owed.append((future, signing_input))
        self._outgoing.append(_frame(b"S", key.kid.encode() + b"\n" + signing_input))
        return future

    def _flush(self) -> None:
        """The frames asked for since the last flush, in one write (one system call for many requests)."""
        frames, self._outgoing = self._outgoing, []
        if self.link.transport is not None and not self.link.lost:
            self.link.transport.write(b"".join(frames))

    async def stop(self) -> None:
        if self.link.transport is not None:
            self.link.transport.close()  # the signer reads end of file and exits
        for _ in range(500):  # up to 5 s, the loop running meanwhile (it closes the socket on its next turn)
            if self.proc.poll() is not None:
                return
            await asyncio.sleep(0.01)
        self.proc.kill()
        self.proc.wait()


async def _spawn() -> _Signer:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with interrupts_ignored():  # until serve() ignores ^C itself: the control plane stops its signers
            proc = subprocess.Popen(
                [sys.executable, "-m", "controlplane.keys.signer", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
    except OSError as exc:
        ours.close()
        raise SignerUnavailable(f"cannot start a signer process: {exc}") from exc
    finally:
        theirs.close()
    link = _Link()
    await asyncio.get_running_loop().create_unix_connection(lambda: link, sock=ours)
    return _Signer(proc, link)


def default_processes() -> int:
    """One signer per core beyond the event loop's own (at least one)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 2
    return max(1, cores - 1)


class ProcessSigners:
    """Signer processes, each request to the one owing the fewest signatures; started by start(), a dead one
    replaced when next needed, all stopped by close()."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("at least one signer process")
        self._size = processes
        self._signers: list[_Signer] = []
        self._starting: asyncio.Lock | None = None

    async def start(self) -> None:
        self._starting = self._starting or asyncio.Lock()
        async with self._starting:
            for gone in [s for s in self._signers if not s.alive]:
                log.error("signer process gone status=%s: replacing it", gone.proc.poll())
                self._signers.remove(gone)
                await gone.stop()
            while len(self._signers) < self._size:
                self._signers.append(await _spawn())

    async def submit(self, key: SigningKey, payload: bytes) -> asyncio.Future[str]:
        """The future of the compact JWS that key.sign_jws(payload) makes, its signature made in a signer process;
        it fails with SignerUnavailable if that signer dies first."""
        if len(self._signers) < self._size or not all(s.alive for s in self._signers):
            await self.start()
        signer = min(self._signers, key=lambda s: len(s.link.owed))
        return signer.sign(key, payload)

    async def sign_jws(self, key: SigningKey, payload: bytes) -> str:
        return await (await self.submit(key, payload))

    async def close(self) -> None:
        signers, self._signers = self._signers, []
        await asyncio.gather(*(s.stop() for s in signers))


def serve(fd: int) -> None:
    """A signer process: sign what arrives on the socket, in order, until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C: the control plane stops us by closing the socket
    keys: dict[bytes, SigningKey] = {}
    buffer = bytearray()
    with socket.socket(fileno=fd) as sock:
        while data := sock.recv(_READ):
            buffer += data
            answers = []
            for frame in _frames(buffer):
                kind, body = frame[:1], frame[1:]
                if kind == b"K":
                    kid, alg, pem = body.split(b"\n", 2)
                    key = load_pem_key(pem, alg.decode())
                    if key.kid.encode() != kid:
                        raise SystemExit("signer: a key whose thumbprint is not its kid")
                    keys[kid] = key
                    continue
                kid, _, signing_input = body.partition(b"\n")
                try:
                    answers.append(_frame(b"O", keys[kid].signature(signing_input)))
                except Exception as exc:  # a bad input is that request's refusal, never the signer's end
                    answers.append(_frame(b"E", f"{type(exc).__name__}: {exc}".encode()))
            if answers:
                sock.sendall(b"".join(answers))


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        serve(int(sys.argv[1]))
