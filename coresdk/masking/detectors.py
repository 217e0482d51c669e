"""PII and secret detectors. Each candidate is found by a linear-time RE2 pattern and then validated (Luhn, issuer
ranges, SSN structure, IBAN mod-97, IP parsing, phone-number metadata), so near-misses are not reported."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import phonenumbers
import re2

PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "AU", "CA", "IT", "ES", "NL", "BR", "CH", "AT", "BE", "SE")


@dataclass(frozen=True)
class Finding:
    entity_type: str
    start: int
    end: int
    confidence: float


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _issuer_ok(d: str) -> bool:
    n2, n3, n4, n6 = int(d[:2]), int(d[:3]), int(d[:4]), int(d[:6])
    length = len(d)
    return (
        (d[0] == "4" and length in (13, 16, 19))  # Visa
        or ((51 <= n2 <= 55 or 2221 <= n4 <= 2720) and length == 16)  # Mastercard
        or (n2 in (34, 37) and length == 15)  # American Express
        or ((n4 == 6011 or n2 == 65 or 644 <= n3 <= 649 or 622126 <= n6 <= 622925) and 16 <= length <= 19)  # Discover
        or ((300 <= n3 <= 305 or n2 in (36, 38, 39)) and 14 <= length <= 19)  # Diners Club
        or (3528 <= n4 <= 3589 and 16 <= length <= 19)  # JCB
        or (n2 == 62 and 16 <= length <= 19)  # UnionPay
        or ((n2 == 50 or 56 <= n2 <= 69) and 12 <= length <= 19)  # Maestro
    )


def valid_card(text: str) -> bool:
    digits = "".join(ch for ch in text if ch.isdigit())
    return 12 <= len(digits) <= 19 and _issuer_ok(digits) and luhn_ok(digits)


def valid_ssn(text: str) -> bool:
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) != 9 or len(set(digits)) == 1:
        return False
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    return area not in (0, 666) and area < 900 and group != 0 and serial != 0


IBAN_LENGTHS = {
    "AD": 24,
    "AE": 23,
    "AL": 28,
    "AT": 20,
    "AZ": 28,
    "BA": 20,
    "BE": 16,
    "BG": 22,
    "BH": 22,
    "BR": 29,
    "BY": 28,
    "CH": 21,
    "CR": 22,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DK": 18,
    "DO": 28,
    "EE": 20,
    "EG": 29,
    "ES": 24,
    "FI": 18,
    "FO": 18,
    "FR": 27,
    "GB": 22,
    "GE": 22,
    "GI": 23,
    "GL": 18,
    "GR": 27,
    "GT": 28,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IL": 23,
    "IQ": 23,
    "IS": 26,
    "IT": 27,
    "JO": 30,
    "KW": 30,
    "KZ": 20,
    "LB": 28,
    "LC": 32,
    "LI": 21,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "MC": 27,
    "MD": 24,
    "ME": 22,
    "MK": 19,
    "MR": 27,
    "MT": 31,
    "MU": 30,
    "NL": 18,
    "NO": 15,
    "PK": 24,
    "PL": 28,
    "PS": 29,
    "PT": 25,
    "QA": 29,
    "RO": 24,
    "RS": 22,
    "SA": 24,
    "SC": 31,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    "SM": 27,
    "ST": 25,
    "SV": 28,
    "TL": 23,
    "TN": 24,
    "TR": 26,
    "UA": 29,
    "VA": 22,
    "VG": 24,
    "XK": 20,
}


def valid_iban(text: str) -> bool:
    iban = text.replace(" ", "").upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


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
    PatternDetector("IBAN_CODE", r"(?i)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", 0.95, valid_iban, hints=_DIGITS),
    PatternDetector("CREDIT_CARD", r"\b\d(?:[ -]?\d){11,18}\b", 0.9, valid_card, hints=_DIGITS),
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
        for match in regex.finditer(text):
            start, end = match.span(detector.group)
            value = text[start:end]
            if detector.entity_type == "IP_ADDRESS" and _looks_like_version(text, start, end):
                continue
            if detector.validate is None or detector.validate(value):
                yield Finding(detector.entity_type, start, end, detector.confidence)


def _looks_like_version(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 8) : start].lower()
    after = text[end : end + 2]
    return before.endswith(("v", "version ", "ver ", "version: ")) or (
        len(after) == 2 and after[0] == "." and after[1].isdigit()
    )


_PHONE_SHAPE = re2.compile(
    r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,8}){1,4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?"
)
_DATE_SHAPE = re2.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4}|\d{1,2}:\d{2}")
_IPV4_SHAPE = re2.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")


def _phone_confidence(candidate: str) -> float:
    """0 unless phonenumbers accepts it: valid in a region (0.85), or possible and phone-formatted (0.6)."""
    main = re2.split(r"\s?(?:x|ext\.?)\s?", candidate)[0]
    digits = sum(ch.isdigit() for ch in main)
    if not 7 <= digits <= 15 or _DATE_SHAPE.search(main) or _IPV4_SHAPE.fullmatch(main):
        return 0.0
    possible = False
    for region in PHONE_REGIONS:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return 0.85
        possible = possible or phonenumbers.is_possible_number(number)
    return 0.6 if possible else 0.0


def _phone_findings(text: str) -> Iterator[Finding]:
    for match in _PHONE_SHAPE.finditer(text):
        start, end = match.span()
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "+-"):
            continue
        if end < len(text) and (text[end].isalnum() or text[end] == ":"):
            continue
        confidence = _phone_confidence(text[start:end])
        if confidence:
            yield Finding("PHONE_NUMBER", start, end, confidence)


def detect(text: str) -> list[Finding]:
    """All findings, overlaps resolved in favour of the higher confidence, then the longer span."""
    candidates = sorted(
        [*_pattern_findings(text), *_phone_findings(text)],
        key=lambda f: (-f.confidence, -(f.end - f.start), f.start),
    )
    chosen: list[Finding] = []
    for f in candidates:
        if all(f.end <= c.start or f.start >= c.end for c in chosen):
            chosen.append(f)
    return sorted(chosen, key=lambda f: f.start)
