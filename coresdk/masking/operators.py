"""Operators applied to findings, chosen per entity type by a named policy."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

Operator = Callable[[str, str], str]  # (entity_type, original) -> replacement


def replace(entity_type: str, _: str) -> str:
    return f"[{entity_type}]"


def redact(_: str, __: str) -> str:
    return ""


def partial(entity_type: str, original: str, keep: int = 4) -> str:
    """Mask every alphanumeric character but the last `keep` ones, keeping separators (cards, phones, IBANs)."""
    alnum = [i for i, ch in enumerate(original) if ch.isalnum()]
    shown = set(alnum[-keep:]) if len(alnum) > keep * 2 else set()
    return "".join(ch if (i in shown or not ch.isalnum()) else "*" for i, ch in enumerate(original))


def hasher(key: bytes) -> Operator:
    """Keyed HMAC-SHA256 pseudonyms: stable for one key, so records can still be joined; unlinkable without it."""

    def op(entity_type: str, original: str) -> str:
        digest = hmac.new(key, f"{entity_type}:{original}".encode(), hashlib.sha256).hexdigest()[:16]
        return f"<{entity_type}:{digest}>"

    return op


@dataclass(frozen=True)
class Policy:
    name: str
    default: str = "replace"
    per_type: dict[str, str] = field(default_factory=dict)

    def operator_for(self, entity_type: str) -> str:
        return self.per_type.get(entity_type, self.default)


BUILTIN_POLICIES = {
    "default": Policy("default"),
    "redact": Policy("redact", default="redact"),
    "partial": Policy(
        "partial",
        per_type={"CREDIT_CARD": "partial", "PHONE_NUMBER": "partial", "IBAN_CODE": "partial", "US_SSN": "partial"},
    ),
    "pseudonymize": Policy(
        "pseudonymize",
        default="hash",
        per_type={
            "PRIVATE_KEY": "replace",
            "API_KEY": "replace",
            "JWT": "replace",
            "SECRET": "replace",
            "URL_CREDENTIALS": "replace",
        },
    ),
    "drop": Policy("drop", default="drop"),
    # reversible: values become CoreSDK ciphertexts (sidecar encryption API), bound to their entity type
    "encrypt": Policy("encrypt", default="encrypt"),
}
