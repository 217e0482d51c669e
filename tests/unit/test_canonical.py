"""The fast canonicaliser must produce byte-for-byte what the reference RFC 8785 implementation produces."""

from __future__ import annotations

import random

import rfc8785

from coresdk.audit.canonical import canonical_bytes

ALPHABET = [chr(c) for c in range(0x00, 0x80)] + [
    "é",
    "ß",
    "\u2028",
    "\u2029",
    "\u00ad",
    "€",
    "\ufeff",
    "中",
    "\uffff",
    "😀",
    "\U0001f600",
    "\U00010000",
]


def rand_str(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))


def rand_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randint(0, 7 if depth < 4 else 4)
    if kind == 0:
        return rand_str(rng)
    if kind == 1:
        return rng.randint(-(2**53) + 1, 2**53 - 1)
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.choice([0.5, -1.25, 1e21, 1e-7, 123456789.125, 0.1, 5e-324])
    if kind == 4:
        return rng.randint(-100, 100)
    if kind in (5, 6):
        return {rand_str(rng): rand_value(rng, depth + 1) for _ in range(rng.randint(0, 6))}
    return [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]


def test_fast_path_agrees_with_reference() -> None:
    rng = random.Random(8785)
    for _ in range(3000):
        doc = {rand_str(rng): rand_value(rng) for _ in range(rng.randint(0, 8))}
        assert canonical_bytes(doc) == rfc8785.dumps(doc), doc


def test_known_orderings_and_escapes() -> None:
    doc = {"b": 1, "a": '\u0000\u001f"\\/\b\f\n\r\t', "\U0001f600": 1, "\ufb33": 2, "é": [True, None]}
    assert canonical_bytes(doc) == rfc8785.dumps(doc)
