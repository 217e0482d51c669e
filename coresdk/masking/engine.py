"""Masking of text and JSON documents: detectors find, a named policy's operators replace.

JSON is walked to any depth below a bound; keys are never altered and the shape is preserved. Values under
secret-like field names are masked whole; other strings are scanned; numbers that are card or SSN numbers are
caught too. Input size and depth are bounded, and every pattern is RE2 (linear time), so hostile input costs time
proportional to its size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coresdk.errors import InvalidArgument
from coresdk.masking.detectors import Finding, detect, valid_card, valid_ssn
from coresdk.masking.fields import REDACTED, is_secret_key
from coresdk.masking.operators import BUILTIN_POLICIES, Operator, Policy, hasher, partial, redact, replace

MAX_INPUT = 1024 * 1024
MAX_DEPTH = 64
TOO_LARGE = "MASK_INPUT_TOO_LARGE"
UNKNOWN_POLICY = "UNKNOWN_MASKING_POLICY"
NO_KEY = "MASKING_KEY_NOT_CONFIGURED"
NO_ENCRYPTION = "MASKING_ENCRYPTION_NOT_CONFIGURED"


@dataclass(frozen=True)
class MaskedFinding:
    entity_type: str
    start: int
    end: int
    confidence: float
    operator: str
    json_path: str = ""


def _no_encryption(entity_type: str, original: str) -> str:
    raise InvalidArgument(NO_ENCRYPTION, "the encrypt operator needs the sidecar's encryption API (Vault configured)")


def _no_key(entity_type: str, original: str) -> str:
    raise InvalidArgument(NO_KEY, "tokenization needs CORESDK_MASKING_HMAC_KEY (a stable key, never a per-call salt)")


class _Drop:
    pass


DROP = _Drop()


class Masker:
    def __init__(
        self,
        hmac_key: bytes | None,
        policies: dict[str, Policy] | None = None,
        encrypt_operator: Operator | None = None,
    ) -> None:
        self.hmac_key = hmac_key
        self._policies = {**BUILTIN_POLICIES, **(policies or {})}
        self._operators: dict[str, Operator] = {
            "replace": replace,
            "redact": redact,
            "partial": lambda t, o: partial(t, o),
            "hash": hasher(hmac_key) if hmac_key else _no_key,
            "drop": redact,
            "encrypt": encrypt_operator or _no_encryption,
        }

    def policy(self, name: str) -> Policy:
        policy = self._policies.get(name or "default")
        if policy is None:
            raise InvalidArgument(UNKNOWN_POLICY, f"no masking policy named {name!r}")
        return policy

    @staticmethod
    def _checked(text: str) -> str:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgument("INVALID_UTF8", "input is not valid UTF-8 (lone surrogate)") from None
        return text

    def mask_text(self, text: str, policy_name: str = "", json_path: str = "") -> tuple[str, list[MaskedFinding]]:
        if len(text) > MAX_INPUT:
            raise InvalidArgument(TOO_LARGE, f"input exceeds {MAX_INPUT} characters")
        policy = self.policy(policy_name)
        return self._apply(text, detect(self._checked(text)), policy, json_path)

    def _apply(
        self, text: str, findings: list[Finding], policy: Policy, json_path: str
    ) -> tuple[str, list[MaskedFinding]]:
        out, pos, reported = [], 0, []
        for f in findings:
            op_name = policy.operator_for(f.entity_type)
            out.append(text[pos : f.start])
            out.append(self._operators[op_name](f.entity_type, text[f.start : f.end]))
            pos = f.end
            reported.append(MaskedFinding(f.entity_type, f.start, f.end, f.confidence, op_name, json_path))
        out.append(text[pos:])
        return "".join(out), reported

    def mask_json(self, document: Any, policy_name: str = "") -> tuple[Any, list[MaskedFinding]]:
        """The masked copy and what was found. A value's JSON pointer is written out only for a finding: most values
        of most documents have nothing to find, and their path would be built for nothing."""
        policy = self.policy(policy_name)
        findings: list[MaskedFinding] = []
        checked = self._checked

        def walk(value: Any, at: _Path, depth: int) -> Any:
            if depth > MAX_DEPTH:
                raise InvalidArgument(TOO_LARGE, f"JSON nested deeper than {MAX_DEPTH}")
            if isinstance(value, dict):
                out = {}
                for k, v in value.items():
                    if isinstance(k, str):
                        if not k.isascii():
                            checked(k)
                        if is_secret_key(k) and v not in (None, "", [], {}):
                            findings.append(MaskedFinding("SECRET_FIELD", 0, 0, 1.0, "replace", _pointer((at, k))))
                            out[k] = REDACTED
                            continue
                    masked = walk(v, (at, k), depth + 1)
                    if masked is not DROP:
                        out[k] = masked
                return out
            if isinstance(value, list):
                items = [walk(v, (at, i), depth + 1) for i, v in enumerate(value)]
                return [i for i in items if i is not DROP]
            if isinstance(value, str):
                candidates = detect(value if value.isascii() else checked(value))
                if not candidates:
                    return value
                masked, found = self._apply(value, candidates, policy, _pointer(at))
                findings.extend(found)
                if all(policy.operator_for(f.entity_type) == "drop" for f in found) and not masked.strip():
                    return DROP
                return masked
            if isinstance(value, int) and not isinstance(value, bool) and not -_SMALL < value < _SMALL:
                digits = str(abs(value))
                entity = (
                    "CREDIT_CARD"
                    if valid_card(digits)
                    else "US_SSN"
                    if len(digits) == 9 and valid_ssn(digits)
                    else None
                )
                if entity is not None:
                    op = policy.operator_for(entity)
                    findings.append(MaskedFinding(entity, 0, len(digits), 0.7, op, _pointer(at)))
                    return DROP if op == "drop" else self._operators[op](entity, digits)
            return value

        return walk(document, None, 0), findings


# Below this an integer has fewer than 9 digits: neither an SSN (9) nor a card number (12 to 19).
_SMALL = 100_000_000

# Where a value sits, as (parent, key) links built in O(1) per step; None is the document itself.
_Path = tuple[Any, str | int] | None


def _pointer(at: _Path) -> str:
    """The RFC 6901 JSON pointer of a path: "" for the document, "/a/0/b~1c" below it."""
    parts: list[str] = []
    while at is not None:
        at, key = at
        parts.append(str(key).replace("~", "~0").replace("/", "~1"))
    return "".join(f"/{part}" for part in reversed(parts))
