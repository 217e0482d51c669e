"""The token events' chain metadata is masked the same way whether it comes from the memo or the detectors (issue
17 moved the hot path's masking behind a memo): for any flat or nested metadata, what goes into the chain is what
the masker says, and only values the control plane generated itself skip it."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.store.events import _MASKER, Event, _masked
from controlplane.store.store import ISSUED_GENERATED

PII_LIKE = st.sampled_from(
    ["alice@example.com", "+1 415 555 0100", "4111 1111 1111 1111", "078-05-1120", "cli_0123abcd", "svc-reader", ""]
)
TEXT = st.one_of(PII_LIKE, st.text(max_size=40))
KEYS = st.sampled_from(["subject", "reason", "jti", "grant_type", "password", "note", "kid"])
FLAT = st.dictionaries(KEYS, TEXT, max_size=5)
NESTED = st.dictionaries(KEYS, st.one_of(TEXT, st.integers(), st.lists(TEXT, max_size=3), FLAT), max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.one_of(FLAT, NESTED))
def test_memoised_masking_equals_the_maskers_answer(metadata: dict[str, Any]) -> None:
    expected, _ = _MASKER.mask_json(metadata)
    assert _masked(metadata) == expected
    assert _masked(dict(metadata)) == expected  # and again, from the memo


@settings(max_examples=100, deadline=None)
@given(subject=TEXT, reason=TEXT)
def test_only_generated_values_skip_the_detectors(subject: str, reason: str) -> None:
    event = Event(
        "issued",
        0.0,
        client_id="cli_x",
        subject=subject,
        detail={"grant_type": "client_credentials", "jti": "4111111111111111", "reason": reason},
        generated=ISSUED_GENERATED,
    )
    metadata = event.chain_fields()["metadata"]
    masked, _ = _MASKER.mask_json({"subject": subject, "reason": reason})
    assert metadata == {**masked, "grant_type": "client_credentials", "jti": "4111111111111111"}


def test_an_email_subject_never_reaches_the_chain_as_typed() -> None:
    event = Event("issued", 0.0, subject="alice@example.com", detail={"jti": "j"}, generated=ISSUED_GENERATED)
    for _ in range(2):  # the second answer comes from the memo
        assert "alice@example.com" not in str(event.chain_fields()["metadata"])
