"""Quality floors on the seeded generated corpus (tests/support/pii_corpus.py), for more than one seed, so the floors
hold for the kind of text and not for one draw of it."""

from __future__ import annotations

import pytest

from coresdk.masking.detectors import detect
from tests.support.pii_corpus import QUALITY_TYPES, Score, generate, score

STRICT = ("EMAIL_ADDRESS", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS")


def corpus_scores(seed: int, count: int) -> dict[str, Score]:
    samples = generate(count, seed)
    return score(samples, [[(f.entity_type, f.start, f.end) for f in detect(s.text)] for s in samples])


@pytest.mark.parametrize("seed", [20260601, 7, 1234567])
def test_quality_floors_on_the_generated_corpus(seed: int) -> None:
    scores = corpus_scores(seed, 1200 if seed == 20260601 else 600)
    for entity in STRICT:
        s = scores[entity]
        assert s.precision >= 0.95 and s.recall >= 0.95, (entity, s)
    assert scores["PHONE_NUMBER"].f1 >= 0.9, scores["PHONE_NUMBER"]


def test_the_corpus_is_labelled_and_seeded() -> None:
    """Each type occurs often enough to measure; the same seed gives the same text (the floors are reproducible)."""
    samples = generate(400, 99)
    counts = {t: sum(s.entity_type == t for x in samples for s in x.spans) for t in QUALITY_TYPES}
    assert min(counts.values()) >= 20, counts
    assert [s.text for s in generate(50, 99)] == [s.text for s in samples[:50]]
    for sample in samples:
        for span in sample.spans:
            assert sample.text[span.start : span.end] == span.value
