"""What every CoreSDK process does the same way: read its configuration once, run until SIGTERM/SIGINT, and turn a
configuration error into one line naming the variable and exit status 2 (never a stack trace)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Literal, TypeVar

from aiohttp import web

from coresdk.config.env import split_host_port
from coresdk.errors import ConfigError

C = TypeVar("C")
GC_YOUNG_THRESHOLD = 7000  # Python's default is 700


def settle_after_start_up() -> None:
    """Take what start-up built out of the garbage collector's way, once a service is listening.

    Everything built at start-up (modules, the engine, key sets, route tables, gRPC handlers) lives as long as the
    process, yet every full collection used to walk it: 20-40 ms pauses, the p99 of a loaded service. Frozen, a full
    collection scans only what requests left behind. The youngest generation is collected ten times less often: each
    collection scans the objects of the requests in flight (~0.1 ms); cycles a request leaves are still freed, later.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def listen(runner: web.BaseRunner, addr: str, variable: str) -> None:
    """Bind an HTTP listener; an address that cannot be bound is a configuration error naming its variable."""
    host, port = split_host_port(addr, variable)
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(variable, f"cannot listen on {addr}: {exc}") from None


class StopSignal(asyncio.Event):
    """Set by SIGTERM or SIGINT once the service serves (its `wait()` began): a graceful stop follows.

    A signal that arrives before that, while the service is still starting (a database that does not answer can
    hold a start for a minute), cancels the start instead: whatever had started is stopped by the service's own
    cleanup, and the process exits at once. A second signal during a graceful stop cancels the stop's waiting too
    (in-flight requests to a silent upstream, say): every acknowledged audit record is already on disk.
    """

    def __init__(self, main: asyncio.Task[Any]) -> None:
        super().__init__()
        self._main = main
        self._serving = False

    def on_signal(self) -> None:
        if self._serving and not self.is_set():
            self.set()
            return
        stopping = self.is_set()
        self.set()  # should the start swallow the cancellation, its wait() still returns at once
        self._main.cancel()
        if stopping:  # a second signal: what is left of the stop gets HURRY_SECONDS, then the process ends
            asyncio.get_running_loop().call_later(HURRY_SECONDS, _exit_now)

    async def wait(self) -> Literal[True]:
        self._serving = True
        return await super().wait()


HURRY_SECONDS = 5.0


def _exit_now() -> None:
    """The end of a stop that a second signal asked to hurry and that still waits (a database that does not answer,
    say): acknowledged records are already durable, so nothing acknowledged is lost by not waiting longer."""
    logging.getLogger("coresdk").warning("stop still waiting %.0f s after a second signal: exiting now", HURRY_SECONDS)
    logging.shutdown()
    os._exit(0)


def stop_signal() -> StopSignal:
    """The service's stop, set by SIGTERM or SIGINT. Take it before starting anything, so a stop during start-up
    is answered too (see StopSignal)."""
    main = asyncio.current_task()
    assert main is not None, "stop_signal() is taken inside the service's main coroutine"
    stop = StopSignal(main)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.on_signal)
    return stop


def run_service(
    name: str,
    load: Callable[[Mapping[str, str]], C],
    serve: Callable[[C], Coroutine[Any, Any, None]],
    environ: Mapping[str, str] | None = None,
) -> int:
    environ = os.environ if environ is None else environ
    level = environ.get("CORESDK_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level if level in ("DEBUG", "INFO", "WARNING", "ERROR") else "INFO",
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(serve(load(environ)))
    except ConfigError as exc:
        print(f"coresdk {name}: configuration error: {exc}", file=sys.stderr)
        return 2
    except asyncio.CancelledError:  # a stop signal during start-up, or a second one while stopping (StopSignal)
        logging.getLogger(f"coresdk.{name}").info("stopped by a signal before it was ready, or while stopping")
        return 0
    return 0
