"""Masking detectors, operators and JSON handling, including near-misses and hostile input."""

from __future__ import annotations

import base64
import json
import random
import secrets
import string
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coresdk.errors import InvalidArgument
from coresdk.masking.detectors import detect, luhn_ok, valid_card, valid_iban, valid_ssn
from coresdk.masking.engine import Masker
from tests.conftest import shared_testdata
from tests.support.pii_corpus import from_presidio_research, score

KEY = b"k" * 32


def types(text: str) -> list[str]:
    return [f.entity_type for f in detect(text)]


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("mail alice.smith+tag@example.co.uk now", "EMAIL_ADDRESS"),
        ("card 4111 1111 1111 1111 ok", "CREDIT_CARD"),
        ("card 5500-0000-0000-0004", "CREDIT_CARD"),
        ("amex 378282246310005", "CREDIT_CARD"),
        ("ssn 123-45-6789", "US_SSN"),
        ("iban DE89 3704 0044 0532 0130 00", "IBAN_CODE"),
        ("iban GB82WEST12345698765432", "IBAN_CODE"),
        ("from 192.168.10.254 today", "IP_ADDRESS"),
        ("v6 2001:db8:85a3::8a2e:370:7334 x", "IP_ADDRESS"),
        ("call +1 415-555-2671 please", "PHONE_NUMBER"),
        ("call 020 7946 0958", "PHONE_NUMBER"),
    ],
)
def test_detectors_find(text: str, entity: str) -> None:
    assert entity in types(text)


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # Luhn-invalid
        "number 1234567890123456",  # no issuer, Luhn-invalid
        "ssn 000-12-3456",
        "ssn 666-12-3456",
        "ssn 912-12-3456",
        "ssn 123-00-4567",
        "ssn 123-45-0000",
        "iban DE89 3704 0044 0532 0130 01",  # bad checksum
        "iban XX89370400440532013000",  # unknown country
        "release v1.2.3.4 shipped",  # version string
        "build 10.2.3.4.5 tagged",
        "id 550e8400-e29b-41d4-a716-446655440000",  # GUID
        "at 2024-03-15 10:30:00",  # timestamp
        "ip 999.1.1.1",
    ],
)
def test_near_misses_are_not_reported(text: str) -> None:
    assert types(text) == [], types(text)


def test_validators() -> None:
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
    assert valid_card("4012888888881881") and not valid_card("4012888888881882")
    assert valid_ssn("078-05-1120") and not valid_ssn("219-09-9999".replace("9999", "0000"))
    assert valid_iban("FR1420041010050500013M02606") and not valid_iban("FR1420041010050500013M02607")


def _secret_samples(rng: random.Random) -> tuple[list[tuple[str, str]], list[str]]:
    def rand(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    up, al, hx = string.ascii_uppercase + string.digits, string.ascii_letters + string.digits, "0123456789abcdef"
    header = base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps({"sub": rand(al, 8)}).encode()).rstrip(b"=").decode()
    positives = [
        ("API_KEY", "AKIA" + rand(up, 16)),
        ("API_KEY", "ghp_" + rand(al, 36)),
        ("API_KEY", "github_pat_" + rand(al + "_", 82)),
        ("API_KEY", "xoxb-" + rand(string.digits, 12) + "-" + rand(al, 24)),
        ("API_KEY", "sk_live_" + rand(al, 24)),
        ("API_KEY", "AIza" + rand(al + "_-", 35)),
        ("API_KEY", "SG." + rand(al, 22) + "." + rand(al, 43)),
        ("API_KEY", "glpat-" + rand(al, 20)),
        ("API_KEY", "npm_" + rand(al, 36)),
        ("JWT", f"{header}.{payload}.{rand(al + '-_', 43)}"),
        ("PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow" + rand(al, 64) + "\n-----END RSA PRIVATE KEY-----"),
        ("PRIVATE_KEY", "-----BEGIN PRIVATE KEY-----\n" + rand(al, 64) + "\n-----END PRIVATE KEY-----"),
        ("URL_CREDENTIALS", f"postgres://app:{rand(al, 16)}@db.internal:5432/orders"),
        ("SECRET", f"password={rand(al + '!@#', 18)}"),
        ("SECRET", f'"api_key": "{rand(hx, 32)}"'),
    ]
    lookalikes = [
        "AKIA is an acronym",
        "ghp_short",
        "sk_live_",
        "the word token: yes",
        "password=password",
        "eyJ not a jwt",
        "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
        "https://example.com/path:with@colon",
        "git sha 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
    ]
    return positives, lookalikes


def test_synthetic_secrets_recall_and_no_false_positives() -> None:
    rng = random.Random(42)
    hits = total = 0
    for _ in range(20):
        positives, _ = _secret_samples(rng)
        for entity, value in positives:
            total += 1
            found = detect(f"config: {value} end")
            hits += any(f.entity_type == entity for f in found)
    assert hits / total >= 0.95, hits / total
    _, lookalikes = _secret_samples(rng)
    for text in lookalikes:
        assert types(text) == [], (text, types(text))


def test_quality_floors_on_presidio_research_data() -> None:
    samples = from_presidio_research(
        json.loads(shared_testdata("pii", "presidio_research_tests_generated_large.json").read_text())
    )
    scores = score(samples, [[(f.entity_type, f.start, f.end) for f in detect(s.text)] for s in samples])
    for entity in ("EMAIL_ADDRESS", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"):
        p, r = scores[entity].precision, scores[entity].recall
        assert p >= 0.95 and r >= 0.95, (entity, scores[entity])
    assert scores["PHONE_NUMBER"].f1 >= 0.9, scores["PHONE_NUMBER"]


def test_operators_and_policies() -> None:
    masker = Masker(KEY)
    text = "card 4111 1111 1111 1111, mail bob@example.com"
    assert masker.mask_text(text)[0] == "card [CREDIT_CARD], mail [EMAIL_ADDRESS]"
    assert masker.mask_text(text, "partial")[0] == "card **** **** **** 1111, mail [EMAIL_ADDRESS]"
    assert masker.mask_text(text, "redact")[0] == "card , mail "
    one, two = masker.mask_text(text, "pseudonymize")[0], masker.mask_text(text, "pseudonymize")[0]
    assert one == two and "4111" not in one and "<CREDIT_CARD:" in one  # stable pseudonyms for joins
    assert Masker(b"other-key" * 4).mask_text(text, "pseudonymize")[0] != one
    masked, findings = masker.mask_text(text)
    assert [(f.entity_type, f.start, f.end) for f in findings] == [("CREDIT_CARD", 5, 24), ("EMAIL_ADDRESS", 31, 46)]
    with pytest.raises(InvalidArgument):
        Masker(None).mask_text(text, "pseudonymize")
    with pytest.raises(InvalidArgument):
        masker.mask_text(text, "no-such-policy")


def test_json_walk_keeps_shape_and_keys() -> None:
    doc = {
        "user": {
            "email": "a@b.io",
            "password": "hunter2",
            "cards": [{"n": 4111111111111111}, {"n": "5500 0000 0000 0004"}],
        },
        "notes": ["call 020 7946 0958", "ünïcode ok"],
        "count": 3,
        "ok": True,
    }
    masked, findings = Masker(KEY).mask_json(doc)
    assert masked == {
        "user": {
            "email": "[EMAIL_ADDRESS]",
            "password": "[REDACTED]",
            "cards": [{"n": "[CREDIT_CARD]"}, {"n": "[CREDIT_CARD]"}],
        },
        "notes": ["call [PHONE_NUMBER]", "ünïcode ok"],
        "count": 3,
        "ok": True,
    }
    assert {f.json_path for f in findings} >= {"/user/email", "/user/password", "/user/cards/0/n", "/notes/0"}
    deep: object = "x"
    for _ in range(100):
        deep = [deep]
    with pytest.raises(InvalidArgument):
        Masker(KEY).mask_json(deep)


def test_hostile_input_is_linear() -> None:
    """Near-matching text: time grows with size, not faster (checked as a ratio of two sizes)."""
    unit = "1234-5678-9012-345 a@b. 192.168.1. +1 (555) 01 " + secrets.token_hex(8) + " eyJhbGci.eyJ "

    def cost(n: int) -> float:
        text = unit * n
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            detect(text)
            best = min(best, time.perf_counter() - t0)
        return best

    small, large = cost(250), cost(2000)
    assert large / small < 8 * 3, (small, large)
    with pytest.raises(InvalidArgument):
        Masker(KEY).mask_text("x" * (1024 * 1024 + 1))


# --- JSON pointers and numbers, generated ----------------------------------------------------------------------------

_KEYS = st.text(alphabet="ab~/_ 0", min_size=0, max_size=4) | st.sampled_from(["password", "email", "card"])
_LEAVES = (
    st.sampled_from(["plain", "alice@example.com", "4111 1111 1111 1111", "078-05-1120", ""])
    | st.integers(min_value=-(10**19), max_value=10**19)
    | st.sampled_from([4111111111111111, 78051120, 99_999_999, 100_000_000, 123456789, True, None])
)
_DOCUMENTS = st.recursive(
    _LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3), max_leaves=12
)


def _resolve(document: object, pointer: str) -> object:
    """RFC 6901: the value a JSON pointer names ("" is the document; ~1 is "/", ~0 is "~")."""
    value = document
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        value = value[int(part)] if isinstance(value, list) else value[part]  # type: ignore[index]
    return value


@given(_DOCUMENTS)
@settings(max_examples=300, deadline=None)
def test_every_finding_names_the_place_it_was_found(document: object) -> None:
    """Each finding's JSON pointer resolves in the original document to the value that was masked there, and a
    value without a finding is left exactly as it was (numbers of fewer than 9 digits are never judged)."""
    masked, findings = Masker(KEY).mask_json(document)
    for finding in findings:
        original = _resolve(document, finding.json_path)
        assert original not in (None, "", [], {})
        if finding.entity_type != "SECRET_FIELD":
            assert isinstance(original, (str, int)) and not isinstance(original, bool)
    found_at = {f.json_path for f in findings}

    def unchanged(before: object, after: object, pointer: str) -> None:
        if any(p == pointer or p.startswith(pointer + "/") for p in found_at):
            if isinstance(before, dict) and isinstance(after, dict):
                for k, v in before.items():
                    child = f"{pointer}/{k.replace('~', '~0').replace('/', '~1')}"
                    if k in after:
                        unchanged(v, after[k], child)
            elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
                for i, (b, a) in enumerate(zip(before, after, strict=True)):
                    unchanged(b, a, f"{pointer}/{i}")
            return
        assert after == before and type(after) is type(before), pointer

    unchanged(document, masked, "")


@pytest.mark.parametrize(
    ("number", "entity"),
    [(4111111111111111, "CREDIT_CARD"), (-4111111111111111, "CREDIT_CARD"), (123456789, "US_SSN"), (12345678, None)],
)
def test_numbers_are_judged_from_nine_digits(number: int, entity: str | None) -> None:
    masked, findings = Masker(KEY).mask_json({"n": number})
    assert [f.entity_type for f in findings] == ([entity] if entity else [])
    assert (masked["n"] == number) is (entity is None)
