"""PII and secret detectors. Each candidate is found by a linear-time RE2 pattern and then validated (Luhn, issuer
ranges, SSN structure, IBAN mod-97, IP parsing, phone-number metadata), so near-misses are not reported."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import re2

from coresdk.masking.cards import luhn_ok, valid_card
from coresdk.masking.iban_registry import IBAN_LENGTHS, candidate_pattern, valid_iban
from coresdk.masking.phones import DEFAULT_PHONE_REGIONS, find_phones

__all__ = ["DEFAULT_PHONE_REGIONS", "IBAN_LENGTHS", "Finding", "detect", "luhn_ok", "valid_card", "valid_iban"]
PHONE_REGIONS = DEFAULT_PHONE_REGIONS


@dataclass(frozen=True)
class Finding:
    entity_type: str
    start: int
    end: int
    confidence: float


def valid_ssn(text: str) -> bool:
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) != 9 or len(set(digits)) == 1:
        return False
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    return area not in (0, 666) and area < 900 and group != 0 and serial != 0


def entropy(value: str) -> float:
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


@dataclass(frozen=True)
class PatternDetector:
    entity_type: str
    pattern: str
    confidence: float
    validate: Callable[[str], bool] | None = None
    group: int = 0
    # Cheap substring test: the pattern can only match texts containing one of these (lower-cased when hint_lower).
    hints: tuple[str, ...] = ()
    hint_lower: bool = False

    def compiled(self) -> re2._Regexp:
        return re2.compile(self.pattern)


def _ip_ok(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_DIGITS = tuple("0123456789")
DETECTORS: tuple[PatternDetector, ...] = (
    PatternDetector(
        "PRIVATE_KEY",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
        1.0,
    ),
    PatternDetector("JWT", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", 0.95, hints=("eyJ",)),
    PatternDetector(
        "URL_CREDENTIALS",
        r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s/:@]{1,256}:([^\s/@]{1,256})@[^\s/]{1,256}",
        0.97,
        group=1,
    ),
    PatternDetector("API_KEY", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", 0.95, hints=("AKIA", "ASIA")),  # AWS access key id
    PatternDetector("API_KEY", r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b", 0.95, hints=("gh",)),  # GitHub
    PatternDetector("API_KEY", r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b", 0.95, hints=("github_pat_",)),
    PatternDetector("API_KEY", r"\bglpat-[A-Za-z0-9_-]{20}\b", 0.95, hints=("glpat-",)),  # GitLab
    PatternDetector("API_KEY", r"\bxox[abposr]-[A-Za-z0-9-]{10,250}\b", 0.95, hints=("xox",)),  # Slack
    PatternDetector(
        "API_KEY", r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,250}\b", 0.95, hints=("_live_", "_test_")
    ),  # Stripe
    PatternDetector("API_KEY", r"\bAIza[0-9A-Za-z_-]{35}\b", 0.9, hints=("AIza",)),  # Google API key
    PatternDetector(
        "API_KEY", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,250}\b", 0.85, hints=("sk-",)
    ),  # OpenAI / Anthropic style
    PatternDetector("API_KEY", r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b", 0.95, hints=("SG.",)),  # SendGrid
    PatternDetector("API_KEY", r"\bnpm_[A-Za-z0-9]{36}\b", 0.95, hints=("npm_",)),
    PatternDetector(
        "EMAIL_ADDRESS", r"\b[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b", 0.95, hints=("@",)
    ),
    PatternDetector("IBAN_CODE", candidate_pattern(), 0.95, valid_iban, hints=_DIGITS),
    # Cards are taken from runs of digit groups (see _card_findings); this pattern only says a run is long enough.
    PatternDetector("CREDIT_CARD", r"\d(?:[ -]?\d){11}", 0.9, valid_card, hints=_DIGITS),
    PatternDetector("US_SSN", r"\b\d{3}[- ]\d{2}[- ]\d{4}\b", 0.85, valid_ssn, hints=_DIGITS),
    PatternDetector("IP_ADDRESS", r"\b(?:\d{1,3}\.){3}\d{1,3}\b", 0.9, _ip_ok, hints=(".",)),
    PatternDetector(
        "IP_ADDRESS",
        r"(?:[0-9A-Fa-f]{1,4}:){2,7}(?::?[0-9A-Fa-f]{1,4}){1,7}|(?:[0-9A-Fa-f]{1,4}:){1,7}:",
        0.85,
        _ip_ok,
        hints=(":",),
    ),
    PatternDetector(
        "SECRET",
        r"(?i)\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth)\b[\"']?\s{0,3}[:=]\s{0,3}[\"']?([^\s\"',;]{8,200})",
        0.8,
        lambda v: entropy(v) >= 3.0,
        group=1,
        hints=("pass", "pwd", "secret", "token", "key", "auth"),
        hint_lower=True,
    ),
)
_COMPILED = tuple((d, d.compiled()) for d in DETECTORS)


def _pattern_set() -> re2.Set:
    """All patterns in one RE2 set: a single linear scan says which detectors can match at all, so the common
    case — a value with nothing to find — costs about a microsecond instead of one scan per detector."""
    patterns = re2.Set.SearchSet(re2.Options())
    for detector in DETECTORS:
        patterns.Add(detector.pattern)
    patterns.Compile()
    return patterns


_SET = _pattern_set()


def _pattern_findings(text: str) -> Iterator[Finding]:
    candidates = _SET.Match(text)
    if not candidates:
        return
    lowered = text.lower()
    for index in sorted(candidates):
        detector, regex = _COMPILED[index]
        if detector.hints:
            haystack = lowered if detector.hint_lower else text
            if not any(h in haystack for h in detector.hints):
                continue
        if detector.entity_type == "CREDIT_CARD":
            yield from _card_findings(text, detector.confidence)
            continue
        for match in regex.finditer(text):
            start, end = match.span(detector.group)
            value = text[start:end]
            if detector.entity_type == "IP_ADDRESS" and _looks_like_version(text, start, end):
                continue
            if detector.validate is None or detector.validate(value):
                yield Finding(detector.entity_type, start, end, detector.confidence)


_VERSION_BEFORE = re.compile(r"(?:^|[^a-z])(?:v|ver|version|build|release|firmware|fw|kernel)[ :=]{0,2}$", re.I)


def _looks_like_version(text: str, start: int, end: int) -> bool:
    """A dotted quad that is a version: after `v`, `version`, `build`... as a word of its own (so "server 10.0.0.1"
    is still an address), or with a fifth component."""
    after = text[end : end + 2]
    return bool(_VERSION_BEFORE.search(text[max(0, start - 12) : start])) or (
        len(after) == 2 and after[0] == "." and after[1].isdigit()
    )


_DIGIT_RUN = re2.compile(r"\b\d+(?:[ -]\d+)*\b")
_DIGITS_ONLY = re2.compile(r"\d+")


def _card_layout(groups: Sequence[int]) -> bool:
    """How the networks print numbers: one block, groups of four (the last may be shorter), or 4-6-5 / 4-6-4
    (American Express, Diners Club). "650-1294302-3075617" is an order number, whatever its check digit says."""
    return (
        len(groups) == 1
        or (all(n == 4 for n in groups[:-1]) and 1 <= groups[-1] <= 4)
        or tuple(groups) in ((4, 6, 5), (4, 6, 4))
    )


def _card_findings(text: str, confidence: float) -> Iterator[Finding]:
    """A card inside a run of digit groups: the whole run, else its longest valid prefix or suffix of whole groups
    ("4111 1111 1111 1111 2025" holds a card followed by a year)."""
    for run in _DIGIT_RUN.finditer(text):
        start, end = run.span()
        if end - start < 12 or (start > 0 and text[start - 1] == "+"):  # "+61 1300 ..." is a phone number
            continue
        # on the run itself: the RE2 wrapper converts a `pos` into bytes from the start of the text each call
        groups = [(start + m.start(), start + m.end()) for m in _DIGITS_ONLY.finditer(text[start:end])]
        sizes = [b - a for a, b in groups]
        if sum(sizes) < 12:
            continue
        last = len(groups) - 1
        choices = [(0, last)] + [(0, j) for j in range(last - 1, -1, -1)] + [(i, last) for i in range(1, last + 1)]
        for i, j in choices:
            if 12 <= sum(sizes[i : j + 1]) <= 19 and _card_layout(sizes[i : j + 1]):
                a, b = groups[i][0], groups[j][1]
                if valid_card(text[a:b]):
                    yield Finding("CREDIT_CARD", a, b, confidence)
                    break


def _phone_findings(text: str, regions: Sequence[str]) -> Iterator[Finding]:
    for f in find_phones(text, regions):
        yield Finding("PHONE_NUMBER", f.start, f.end, f.confidence)


def detect(text: str, phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> list[Finding]:
    """All findings, overlaps resolved in favour of the higher confidence, then the longer span."""
    candidates = sorted(
        [*_pattern_findings(text), *_phone_findings(text, phone_regions)],
        key=lambda f: (-f.confidence, -(f.end - f.start), f.start),
    )
    chosen: list[Finding] = []
    for f in candidates:
        if all(f.end <= c.start or f.start >= c.end for c in chosen):
            chosen.append(f)
    return sorted(chosen, key=lambda f: f.start)
