"""One canonical request path: what the gateway matches is exactly what it forwards.

A proxy that authorizes one spelling of a path and forwards another is an authorization bypass: `..` collapsed by the
HTTP client, `%2e%2e` decoded by the application, `%2f` split into two segments by a framework, `;jsessionid`
parameters dropped by a servlet container. Rather than normalising (and guessing how every upstream normalises), the
gateway accepts only paths that have a single reading and refuses the rest with 400:

- origin-form only (`/a/b`, never `http://host/a`, `*` or a fragment);
- RFC 3986 path characters only (unreserved, sub-delims other than `;`, `:`, `@`, `%HH`), so no whitespace, no
  backslash, no control or non-ASCII byte;
- no dot segments (`.`, `..`) and no empty segments (`//`, a trailing `/`), except the root path `/`;
- percent-encoding only where it is needed: an encoded unreserved character (`%41`, `%2e`) is a second spelling and
  refused, as are encoded separators and bytes that upstreams treat specially (`/`, `\\`, `%`, `;`, NUL and the other
  control characters).

The canonical path is then the raw path itself: routes are matched on it and it is forwarded byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coresdk import reasons
from coresdk.errors import InvalidArgument

_PCHAR = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,=:@%]*")
_QUERY = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/?\[\]|^`{}\"<>]*")
_HEX = "0123456789abcdefABCDEF"
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Decoded bytes that some upstream would read as structure: separators, the escape itself, parameters, NUL, controls.
_FORBIDDEN_DECODED = frozenset(b"/\\%;") | frozenset(range(0x20)) | {0x7F}


class AmbiguousPath(InvalidArgument):
    """The request target has more than one reading; the gateway refuses it rather than guess (400)."""

    def __init__(self, detail: str) -> None:
        super().__init__(reasons.AMBIGUOUS_PATH, detail)


@dataclass(frozen=True)
class Target:
    path: str  # canonical: matched and forwarded as is
    query: str  # raw query string without "?", forwarded as is ("" when absent)

    @property
    def raw(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


def _check_escapes(segment: str) -> None:
    i = segment.find("%")
    while i != -1:
        pair = segment[i + 1 : i + 3]
        if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
            raise AmbiguousPath("a '%' must be followed by two hex digits")
        byte = int(pair, 16)
        if byte in _UNRESERVED:
            raise AmbiguousPath(f"'%{pair}' encodes a character that needs no encoding")
        if byte in _FORBIDDEN_DECODED:
            raise AmbiguousPath(f"'%{pair}' encodes a separator or control character")
        i = segment.find("%", i + 3)


def canonical_target(raw: str) -> Target:
    """Split and check a raw request target; raise AmbiguousPath for anything with a second reading."""
    if "#" in raw:
        raise AmbiguousPath("a request target has no fragment")
    path, sep, query = raw.partition("?")
    if not path.startswith("/"):
        raise AmbiguousPath("the request target must be an absolute path")
    if sep and not _QUERY.fullmatch(query):
        raise AmbiguousPath("the query holds characters that must be percent-encoded")
    if path == "/":
        return Target(path, query)
    for segment in path[1:].split("/"):
        if segment == "":
            raise AmbiguousPath("empty path segment")
        if segment in (".", ".."):
            raise AmbiguousPath("dot segment in path")
        if not _PCHAR.fullmatch(segment):
            raise AmbiguousPath("the path holds characters that are not allowed (';', '\\', space, control, non-ASCII)")
        if "%" in segment:
            _check_escapes(segment)
    return Target(path, query)
