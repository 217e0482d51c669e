"""Masking throughput and quality on the presidio-research generated set, with Presidio measured in the same run
(presidio-analyzer + anonymizer with the regex-only `no_op` NLP engine) when it is installed (`pip install .[bench]`).

Run: .venv/bin/python -m bench.masking
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from coresdk.masking.engine import Masker

DATA = (
    Path(__file__).resolve().parents[2] / "shared" / "testdata" / "pii" / "presidio_research_tests_generated_large.json"
)
TYPES = ("EMAIL_ADDRESS", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS", "PHONE_NUMBER")


def f1_scores(items: list[dict[str, Any]], found: list[list[tuple[str, int, int]]]) -> dict[str, float]:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for item, spans in zip(items, found, strict=True):
        gold = [
            (s["entity_type"], s["start_position"], s["end_position"])
            for s in item["spans"]
            if s["entity_type"] in TYPES
        ]
        spans = [s for s in spans if s[0] in TYPES]
        for t, a, b in spans:
            (tp if any(t == g and a < ge and gs < b for g, gs, ge in gold) else fp)[t] += 1
        for g, gs, ge in gold:
            if not any(t == g and a < ge and gs < b for t, a, b in spans):
                fn[g] += 1
    out = {}
    for t in TYPES:
        p, r = tp[t] / max(1, tp[t] + fp[t]), tp[t] / max(1, tp[t] + fn[t])
        out[t] = 2 * p * r / max(1e-9, p + r)
    return out


def run_coresdk(texts: list[str]) -> tuple[float, list[list[tuple[str, int, int]]]]:
    masker = Masker(b"bench-key-0123456789abcdef0123456789")
    found = []
    started = time.perf_counter()
    for text in texts:
        _, findings = masker.mask_text(text)
        found.append([(f.entity_type, f.start, f.end) for f in findings])
    return sum(map(len, texts)) / (time.perf_counter() - started), found


def run_presidio(texts: list[str]) -> tuple[float, list[list[tuple[str, int, int]]]] | None:
    try:
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_anonymizer import AnonymizerEngine
    except ImportError:
        return None
    provider = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "no_op", "models": [{"lang_code": "en", "model_name": "none"}]}
    )
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    anonymizer = AnonymizerEngine()
    found = []
    started = time.perf_counter()
    for text in texts:
        results = analyzer.analyze(text=text, language="en", entities=list(TYPES))
        anonymizer.anonymize(text=text, analyzer_results=results)
        found.append([(r.entity_type, r.start, r.end) for r in results])
    return sum(map(len, texts)) / (time.perf_counter() - started), found


def main() -> None:
    items = json.loads(DATA.read_text())
    texts = [i["full_text"] for i in items]
    ours_rate, ours = run_coresdk(texts)
    ours_f1 = f1_scores(items, ours)
    presidio = run_presidio(texts)
    print(f"\n{len(texts)} texts, {sum(map(len, texts))} characters")
    print(f"{'':<16} {'CoreSDK':>10} {'Presidio':>10}")
    p_f1 = f1_scores(items, presidio[1]) if presidio else {}
    for t in TYPES:
        print(f"F1 {t:<13} {ours_f1[t]:>10.3f} {p_f1.get(t, float('nan')):>10.3f}")
    print(f"{'chars/s':<16} {ours_rate:>10.0f} {presidio[0] if presidio else float('nan'):>10.0f}")
    if presidio:
        print(f"\nratio: {ours_rate / presidio[0]:.1f}x Presidio's throughput (target >= 10x at equal or better F1)")
    else:
        print("\nPresidio is not installed (pip install '.[bench]'): no ratio")


if __name__ == "__main__":
    main()
