"""Masking throughput and quality, with Presidio measured in the same run (presidio-analyzer + anonymizer with the
regex-only `no_op` NLP engine) when it is installed (`pip install '.[test,bench]'`), on two kinds of text:

- the presidio-research generated set (shared test data), and
- the seeded labelled corpus of tests/support/pii_corpus.py (faker in many locales, registry IBANs, libphonenumber's
  example numbers, networks' IIN ranges, among look-alikes), which no detector was tuned on.

Both engines are warmed up on a few texts first (lazy regex compilation), then timed over the whole set; the best of
three passes is reported, since the machine is shared.

Run: .venv/bin/python -m bench.masking
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from coresdk.masking.engine import Masker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.pii_corpus import (  # noqa: E402
    QUALITY_TYPES,
    Found,
    Sample,
    from_presidio_research,
    generate,
    score,
)

DATA = ROOT.parent / "shared" / "testdata" / "pii" / "presidio_research_tests_generated_large.json"
PASSES = 3
Engine = Callable[[str], Found]


def coresdk_engine() -> Engine:
    masker = Masker(b"bench-key-0123456789abcdef0123456789")

    def run(text: str) -> Found:
        _, findings = masker.mask_text(text)
        return [(f.entity_type, f.start, f.end) for f in findings]

    return run


def presidio_engine() -> Engine | None:
    try:
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_anonymizer import AnonymizerEngine
    except ImportError:
        return None
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    provider = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "no_op", "models": [{"lang_code": "en", "model_name": "none"}]}
    )
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    anonymizer = AnonymizerEngine()

    def run(text: str) -> Found:
        results = analyzer.analyze(text=text, language="en", entities=list(QUALITY_TYPES))
        anonymizer.anonymize(text=text, analyzer_results=results)
        return [(r.entity_type, r.start, r.end) for r in results]

    return run


def _timed(engine: Engine, texts: Sequence[str]) -> tuple[float, list[Found]]:
    started = time.perf_counter()
    found = [engine(text) for text in texts]
    return time.perf_counter() - started, found


def measure(engines: Sequence[Engine], samples: Sequence[Sample]) -> list[tuple[float, list[Found]]]:
    """(chars/s, findings) per engine: passes alternate between the engines so that load from others on the machine
    falls on both alike; the best pass of each counts."""
    texts = [s.text for s in samples]
    for engine in engines:
        for text in texts[:50]:
            engine(text)
    best = [float("inf")] * len(engines)
    found: list[list[Found]] = [[] for _ in engines]
    for _ in range(PASSES):
        for i, engine in enumerate(engines):
            elapsed, found[i] = _timed(engine, texts)
            best[i] = min(best[i], elapsed)
    chars = sum(map(len, texts))
    return [(chars / b, f) for b, f in zip(best, found, strict=True)]


def report(title: str, samples: Sequence[Sample], ours: Engine, presidio: Engine | None) -> None:
    measured = measure([ours] if presidio is None else [ours, presidio], samples)
    (ours_rate, ours_found), theirs = measured[0], (measured[1] if presidio else None)
    ours_scores = score(samples, ours_found)
    their_scores = score(samples, theirs[1]) if theirs else {}
    print(f"\n{title}: {len(samples)} texts, {sum(len(s.text) for s in samples)} characters")
    print(f"{'':<16} {'CoreSDK':>10} {'Presidio':>10}")
    for t in QUALITY_TYPES:
        theirs_f1 = their_scores[t].f1 if t in their_scores else float("nan")
        print(f"F1 {t:<13} {ours_scores[t].f1:>10.3f} {theirs_f1:>10.3f}")
    print(f"{'chars/s':<16} {ours_rate:>10.0f} {theirs[0] if theirs else float('nan'):>10.0f}")
    if theirs:
        print(f"ratio: {ours_rate / theirs[0]:.1f}x Presidio's throughput (target >= 10x at equal or better F1)")
    else:
        print("Presidio is not installed (pip install '.[test,bench]'): no ratio")


def main() -> None:
    ours, presidio = coresdk_engine(), presidio_engine()
    if DATA.exists():
        report("presidio-research generated set", from_presidio_research(json.loads(DATA.read_text())), ours, presidio)
    else:
        print(f"{DATA} not present: shared set skipped")
    report("generated corpus (tests/support/pii_corpus.py, seed 20260601)", generate(), ours, presidio)


if __name__ == "__main__":
    main()
