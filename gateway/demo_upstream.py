"""A tiny application for `coresdk dev`: it answers with the identity the gateway vouched for."""

from __future__ import annotations

import os
import sys

from aiohttp import web

from coresdk.config.env import split_host_port


async def whoami(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "path": request.path,
            "user": request.headers.get("X-User-ID"),
            "tenant": request.headers.get("X-Tenant-ID"),
            "scopes": request.headers.get("X-Scopes"),
            "request_id": request.headers.get("X-Request-ID"),
        }
    )


def main() -> int:
    host, port = split_host_port(
        os.environ.get("CORESDK_DEMO_UPSTREAM_ADDR", "127.0.0.1:9000"), "CORESDK_DEMO_UPSTREAM_ADDR"
    )
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", whoami)
    web.run_app(app, host=host, port=port, print=lambda *_: None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
