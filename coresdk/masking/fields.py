"""Field-name rules: values under secret-like keys are masked whole, at any depth, keeping the document's shape."""

from __future__ import annotations

import functools
import re
from typing import Any

REDACTED = "[REDACTED]"
_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|authorization|auth_header|cookie|set-cookie|api[_-]?key|apikey|"
    r"private[_-]?key|client[_-]?secret|credential|session[_-]?id|ssn|card[_-]?number|cvv|pin)$",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether values under this field name are masked whole. Cached: the same few names recur in every record."""
    normalized = key.strip().lower().replace(" ", "_")
    return bool(_SECRET_KEY.search(normalized))


def mask_fields(value: Any) -> tuple[Any, int]:
    """Return (masked copy, number of masked values). Keys are never altered."""
    count = 0

    def walk(v: Any) -> Any:
        nonlocal count
        if isinstance(v, dict):
            out = {}
            for k, item in v.items():
                if isinstance(k, str) and is_secret_key(k) and item not in (None, "", [], {}):
                    count += 1
                    out[k] = REDACTED
                else:
                    out[k] = walk(item)
            return out
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(value), count
