"""RFC 8785 canonical JSON, fast where it provably agrees with the reference.

For documents without floats whose object keys are all in the Basic Multilingual Plane, the standard library's
`json.dumps(sort_keys=True, ensure_ascii=False, separators=(",", ":"))` produces exactly the RFC 8785 bytes: the
same minimal string escaping (short forms for \\b \\t \\n \\f \\r, lowercase \\u00xx for other control
characters), integers in plain decimal, and code-point key order, which equals UTF-16 order inside the BMP.
Everything else (floats, astral-plane keys) goes through the `rfc8785` package. A test checks the two agree.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

_PLAIN = (str, int, bool, type(None))


def _fast_path_safe(value: Any) -> bool:
    """No floats anywhere and no astral-plane key. Plain scalars are passed over by exact type (a record is mostly
    strings), containers are walked; anything unusual — a float, a subclass — is judged by isinstance."""
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            for k, item in v.items():
                if not k.isascii() and any(ord(ch) > 0xFFFF for ch in k):
                    return False
                if type(item) not in _PLAIN:
                    stack.append(item)
        elif type(v) is list:
            for item in v:
                if type(item) not in _PLAIN:
                    stack.append(item)
        elif isinstance(v, dict):
            stack.extend(v.values())
            if any(not k.isascii() and any(ord(ch) > 0xFFFF for ch in k) for k in v):
                return False
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, float):
            return False
    return True


# One encoder for every call: json.dumps with options builds a new JSONEncoder each time.
_ENCODE = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def canonical_bytes(value: Any) -> bytes:
    if _fast_path_safe(value):
        return _ENCODE(value).encode()
    return rfc8785.dumps(value)
