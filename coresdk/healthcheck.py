"""Container health probe: exit 0 when the URL answers 200, 1 otherwise. No shell, curl or wget in the images."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def probe(url: str, timeout: float = 2.0) -> int:
    if not url.startswith(("http://127.0.0.1:", "http://[::1]:", "http://localhost:")):
        print(f"refusing to probe {url}: health checks stay on loopback", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only, checked above
            return 0 if resp.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m coresdk.healthcheck http://127.0.0.1:PORT/PATH", file=sys.stderr)
        return 2
    return probe(args[0])


if __name__ == "__main__":
    sys.exit(main())
