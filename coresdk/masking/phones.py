"""Phone numbers, found and validated by libphonenumber (`phonenumbers.PhoneNumberMatcher`), gated by a linear-time
RE2 pre-scan so that text without a run of digits costs nothing, and with context rules that tell a phone number
from the numbers of a postal address or an identifier.

Two tiers:
- valid: the matcher at `Leniency.VALID` accepts the number for one of the configured default regions (or as an
  international number). VALID also requires the national prefix where the region's formatting rules need one, so a
  bare 10-digit identifier is not a German mobile. Reported unless the context says address or identifier.
- possible: the number only has a possible length for a region (random test data, numbers from new ranges). Reported
  only with positive evidence: a phone context word next to it, or phone formatting (a NANP layout, an international
  prefix, or a trunk-prefixed national number in groups), and never in an address or identifier context.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import phonenumbers
import re2
from phonenumbers import Leniency, PhoneMetadata, PhoneNumberMatcher, re_util

# Keep libphonenumber's compiled metadata patterns: numbers from many regions otherwise push them out of the `re`
# module's 512-entry cache and every few numbers pay for recompiling (bounded by the metadata's size).
re_util.enable_pattern_cache()

DEFAULT_PHONE_REGIONS: tuple[str, ...] = (
    "US", "GB", "DE", "FR", "IN", "AU", "CA", "IT", "ES", "NL", "BR", "CH", "AT", "BE", "SE",
)  # fmt: skip

VALID_CONFIDENCE = 0.85
POSSIBLE_CONFIDENCE = 0.6

# Pre-scan: at least 5 digits joined by at most one separator (and brackets), then an optional
# extension; group 1 is the number without it. Newlines do not join: a house number on one line and a postcode on
# the next are two runs.
_JOIN = r"(?:[ .\-/]?[()]?[ .\-/]?\d)"
CANDIDATE = re2.compile(rf"(\(?\+\d{_JOIN}{{3,24}}|\(?\d{_JOIN}{{4,24}})(?:[ ]?(?:x|ext\.?|extension)[ ]?\d{{1,6}})?")
# Phone layouts that street numbers, postcodes and identifiers do not have.
_FORMATTED = re2.compile(
    r"(?:(?:\+?1|001)[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}"  # NANP
    r"|(?:\+|00)\d{1,3}[ .\-(].*"  # international prefix, then groups
    r"|\(?0\d{1,5}\)?[ .\-/]\d{2,8}(?:[ .\-/]\d{1,8})*"  # trunk prefix 0, then groups
)
_DATE = re2.compile(r"(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4})(?:\D|$)")
_DOTTED_QUAD = re2.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
# Postal code layouts that are also possible phone lengths: Portugal 4-3, Brazil 5-3, US ZIP+4 5-4, Japan 3-4.
_POSTCODE = re2.compile(r"\d{4}-\d{3}|\d{5}-\d{3}|\d{5}-\d{4}|\d{3}-\d{4}")

_PHONE_BEFORE = re.compile(
    r"\b(?:phone|tel|telephone|telefon|téléphone|mobile|mobil|mob|cell|cellphone|fax|call|calling|contact|reach|"
    r"dial|dialled|dialed|ring|ringing|answer|answering|voicemail|sms|text|whatsapp|ph|hotline|landline)\W{0,4}(?:\w+\W{1,3}){0,2}$",
    re.IGNORECASE,
)
_PHONE_AFTER = re.compile(r"^\W{0,3}(?:office|fax|mobile|home|work|cell|phone|tel)\b", re.IGNORECASE)
# Identifier or address words just before the number, and street words just after it.
_NOT_PHONE_BEFORE = re.compile(
    r"\b(?:order|invoice|inv|ref|reference|id|account|acct|ticket|case|tracking|serial|sku|transaction|txn|receipt|"
    r"confirmation|booking|zip|postcode|postal|plz|cep|apt|apartment|appartamento|suite|ste|unit|flat|building|"
    r"bldg|room|floor|lot|box|version|build|release|isbn|iban|bic|swift|amount|total|price|eur|usd|gbp|license|licence|"
    r"passport|ssn|dl|tax|vat|ein|tin|nhs|nin|pin|code|otp)"
    r"\W{0,4}(?:(?:#|no\.?|nr\.?|number|is|was|of)\W{0,3}){0,2}$",
    re.IGNORECASE,
)
_STREET_AFTER = re.compile(
    r"^,?\s(?:st|street|rd|road|ave|avenue|av|lane|ln|blvd|boulevard|dr|drive|way|court|ct|place|pl|square|sq|"
    r"terrace|crescent|close|hwy|highway|pike|parkway|pkwy|rue|via|viale|calle|avenida|rua|praça|strasse|straße|str|"
    r"weg|gasse|platz|allee|vej|gade|väg|vägen|gatan|laan|straat|plein|apt|suite|unit)\b",
    re.IGNORECASE,
)
# Counts and measures: "322 334 676 rows".
_UNIT_AFTER = re.compile(
    r"^\s?(?:rows|records|items|users|bytes|[kmgt]i?b|ms|µs|ns|s|sec|seconds|minutes|times|units|pcs|km|kg|m|views|"
    r"requests|events|entries|lines|files|messages|points|votes|tokens|steps|%)\b",
    re.IGNORECASE,
)
# House number (maybe "34/64") and postcode before a capitalised place name: "Schulzring 166 87033 Burglengenfeld",
# "Av Caetana Azevedo, 72 6235-123 Agualva", "Skolevej 370 3911 Vig".
_HOUSE_AND_POSTCODE = re2.compile(r"\d{1,4}(?:[/-]\d{1,4})?[ ]\d{2,5}(?:-\d{3,4})?")
_ISBN = re2.compile(r"97[89][- ]\d{1,5}[- ]\d{1,7}[- ]\d{1,7}[- ][0-9X]|97[89]\d{10}")
_PHONE_BEFORE_STRONG = re.compile(
    r"\b(?:phone|tel|telephone|mobile|cell|fax|call|whatsapp)\W{0,4}$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PhoneFinding:
    start: int
    end: int
    confidence: float


_TYPES = (
    "fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number", "voip", "pager", "uan",
    "voicemail",
)  # fmt: skip
# per national-number length: (general pattern, the number types' patterns admitting that length)
_ByLength = dict[int, list[tuple[re.Pattern[str], tuple[re.Pattern[str], ...]]]]


@cache
def _region_table(region: str) -> tuple[str, _ByLength]:
    """The region's trunk prefix and, per national-number length, the general and per-type patterns of every region
    sharing its country calling code (GB with GG, IM and JE), compiled once from libphonenumber's metadata."""
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return "", {}
    table: _ByLength = {}
    for sibling in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(metadata.country_code or 0, ()):
        meta = PhoneMetadata.metadata_for_region(sibling)
        if meta is None or meta.general_desc is None or meta.general_desc.national_number_pattern is None:
            continue
        general = re.compile(meta.general_desc.national_number_pattern)
        descs = [d for name in _TYPES if (d := getattr(meta, name)) is not None and d.national_number_pattern]
        for length in meta.general_desc.possible_length:
            types = tuple(
                re.compile(d.national_number_pattern)
                for d in descs
                if not d.possible_length or length in d.possible_length
            )
            table.setdefault(length, []).append((general, types))
    return metadata.national_prefix or "", table


def _plausible_regions(digits: str, regions: Sequence[str]) -> tuple[list[str], bool]:
    """(regions where these national digits, with or without the trunk prefix, match a number type's pattern;
    whether they match some region's general pattern at all). It mirrors libphonenumber's own validity and
    possibility checks, so the matcher runs only for regions where it can succeed; the matcher stays the authority."""
    valid, possible = [], False
    for region in regions:
        trunk, table = _region_table(region)
        variants = (digits, digits[len(trunk) :]) if trunk and digits.startswith(trunk) else (digits,)
        for v in variants:
            for general, types in table.get(len(v), ()):
                if general.fullmatch(v):
                    possible = True
                    if any(t.fullmatch(v) for t in types):
                        valid.append(region)
                        break
            else:
                continue
            break
    return valid, possible


def _matcher_span(text: str, start: int, end: int, regions: Sequence[str]) -> tuple[int, int] | None:
    """The span that libphonenumber's matcher accepts at VALID for the first of these regions that has one, run on
    the candidate with one character of context either side (the matcher refuses numbers glued to letters)."""
    lo, hi = max(0, start - 1), min(len(text), end + 1)
    window = text[lo:hi]
    for region in regions:
        for match in PhoneNumberMatcher(window, region, leniency=Leniency.VALID, max_tries=4):
            return lo + match.start, lo + match.end
    return None


def _possible_international(digits: str) -> bool:
    try:
        number = phonenumbers.parse("+" + digits.removeprefix("00"), None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(number))


def _glued(text: str, start: int, end: int) -> bool:
    """Part of a longer token: an identifier, a path, an address, a version or a time."""
    if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "+-_/.@#:"):
        return True
    return end < len(text) and (
        text[end].isalnum() or text[end] in "_@" or (text[end] in ".:/" and text[end + 1 : end + 2].isdigit())
    )


def _not_a_phone(text: str, start: int, end: int, main: str, digits: str, before: str) -> bool:
    """Context and layout that make digits an identifier, an address, a count or a time rather than a phone."""
    after = text[end : end + 24]
    if _NOT_PHONE_BEFORE.search(before) or _STREET_AFTER.match(after) or _UNIT_AFTER.match(after):
        return True
    if _POSTCODE.fullmatch(main) or _ISBN.fullmatch(main):
        return True
    if main.isdigit() and (
        (len(main) == 10 and 1_000_000_000 <= int(main) < 2_200_000_000)
        or (len(main) == 13 and 1_000_000_000_000 <= int(main) < 2_200_000_000_000)
    ):
        return True  # Unix time in seconds or milliseconds (2001 to 2039)
    place = after.lstrip(", \n")[:1]
    return bool(place.isupper() and after[:1] in ", \n" and _HOUSE_AND_POSTCODE.fullmatch(main))


def find_phones(text: str, regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> Iterator[PhoneFinding]:
    """Phone numbers in the text, each found and validated by the matcher for a configured default region (or as an
    international number), or accepted as a possible number with phone formatting or phone context."""
    for candidate in CANDIDATE.finditer(text):
        start, end = candidate.span()
        main_end = candidate.end(1)
        if text[start] == "(" and ")" not in text[start:main_end]:
            start += 1
        if _glued(text, start, end):
            continue
        main = text[start:main_end]
        digits = "".join(filter(str.isdigit, main))
        international = main.startswith(("+", "(+")) or digits.startswith("00")
        if not 5 <= len(digits) <= 17:
            continue
        before = text[max(0, start - 32) : start]
        strong = _PHONE_BEFORE_STRONG.search(before) is not None
        if (len(digits) < 7 and not (international or strong)) or _DATE.match(main) or _DOTTED_QUAD.fullmatch(main):
            continue  # short national numbers ("14 020") only after "call", "tel" and the like
        if not strong and _not_a_phone(text, start, end, main, digits, before):
            continue
        if international:
            tries, possible = (regions[:1] if "+" in main[:2] else regions), True
        else:
            tries, possible = _plausible_regions(digits, regions)
        span = _matcher_span(text, start, end, tries)
        if span is not None:
            yield PhoneFinding(span[0], span[1], VALID_CONFIDENCE)
        elif international:
            if _possible_international(digits):  # a "+" and a possible length: written as a phone number
                yield PhoneFinding(start, end, POSSIBLE_CONFIDENCE)
        elif possible and (
            strong
            or _FORMATTED.fullmatch(main)
            or _PHONE_BEFORE.search(before)
            or _PHONE_AFTER.match(text[end : end + 12])
        ):
            yield PhoneFinding(start, end, POSSIBLE_CONFIDENCE)
