"""A seeded generator of labelled PII text, and the scorer the quality tests and the benchmark share.

Why a generator: a fixed data set can be learnt by accident (the issuer table once stopped where the shared data
stopped). This one draws values from sources the masker does not use — `faker` in many locales, `schwifty`'s IBAN
generator, libphonenumber's example numbers (varied in their last digits and re-validated), the card networks' IIN
ranges — and sets them in log lines, tickets and prose among look-alikes that a masker must leave alone: order and
invoice numbers, ZIP and postal codes, street addresses, timestamps, epoch times, version strings, UUIDs, ISBNs,
money and counts. A value is labelled only when an independent validator agrees it is what it claims to be
(schwifty for IBANs, phonenumbers for phones), so the labels do not lean on the code under test.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from faker import Faker
from schwifty import IBAN
from stdnum import iban as stdnum_iban

QUALITY_TYPES = ("EMAIL_ADDRESS", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS", "PHONE_NUMBER")

# faker locales for names, addresses, postcodes and dates; phones come from the ones whose region is configured
LOCALES = (
    "en_US", "en_GB", "de_DE", "fr_FR", "it_IT", "es_ES", "nl_NL", "pt_PT", "pt_BR", "sv_SE", "da_DK", "no_NO",
    "pl_PL", "cs_CZ", "fi_FI", "de_AT", "de_CH", "fr_CH", "nl_BE", "en_AU", "en_CA", "en_IN", "ro_RO", "hu_HU",
    "el_GR", "tr_TR", "en_IE", "es_MX",
)  # fmt: skip
PHONE_LOCALES = {
    "en_US": "US", "en_GB": "GB", "de_DE": "DE", "fr_FR": "FR", "en_IN": "IN", "en_AU": "AU", "en_CA": "CA",
    "it_IT": "IT", "es_ES": "ES", "nl_NL": "NL", "pt_BR": "BR", "de_CH": "CH", "fr_CH": "CH", "de_AT": "AT",
    "nl_BE": "BE", "sv_SE": "SE",
}  # fmt: skip
FAKER_CARD_TYPES = ("visa13", "visa16", "visa19", "mastercard", "amex", "discover", "diners", "jcb15", "jcb16")
# Ranges faker does not draw from, as the networks publish them: (prefix low, prefix high, length)
EXTRA_CARD_RANGES = (
    ("2221", "2720", 16),  # Mastercard 2-series
    ("3528", "3589", 16),  # JCB
    ("3528", "3589", 19),
    ("644", "649", 16),  # Discover
    ("622126", "622925", 16),  # Discover / UnionPay
    ("62", "62", 16),  # UnionPay
    ("62", "62", 19),
    ("36", "36", 14),  # Diners Club International
    ("5018", "5018", 12),  # Maestro
    ("6759", "6759", 19),
    ("2200", "2204", 16),  # Mir
)
_PHONE_TYPES = (
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.TOLL_FREE,
)


@dataclass(frozen=True)
class Span:
    entity_type: str
    start: int
    end: int
    value: str


@dataclass
class Sample:
    text: str
    spans: list[Span] = field(default_factory=list)


def luhn_complete(body: str) -> str:
    """The body with its Luhn check digit appended."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


class _Values:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fake = Faker(list(LOCALES))
        self.fake.seed_instance(seed)
        self.regions = sorted(phonenumbers.SUPPORTED_REGIONS)

    def one_of(self, *makers: Callable[[], str]) -> str:
        return self.rng.choice(makers)()

    def locale(self, locales: Sequence[str] = LOCALES) -> Any:
        return self.fake[self.rng.choice(list(locales))]

    # --- labelled values -------------------------------------------------------------------------------------
    def email(self) -> str:
        f = self.locale()
        return self.rng.choice((f.ascii_email, f.ascii_free_email, f.ascii_company_email))()

    def card(self) -> str:
        if self.rng.random() < 0.6:
            digits = self.fake["en_US"].credit_card_number(card_type=self.rng.choice(FAKER_CARD_TYPES))
        else:
            low, high, length = self.rng.choice(EXTRA_CARD_RANGES)
            prefix = str(self.rng.randint(int(low), int(high))).zfill(len(low))
            body = prefix + "".join(self.rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
            digits = luhn_complete(body)
        style = self.rng.random()
        if len(digits) == 15 and digits[:2] in ("34", "37") and style < 0.4:
            return f"{digits[:4]} {digits[4:10]} {digits[10:]}"
        if style < 0.35:
            return digits
        sep = " " if style < 0.7 else "-"
        return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))

    def iban(self) -> str:
        if self.rng.random() < 0.5:
            value = self.locale().iban()
        else:
            country = self.rng.choice(sorted(_iban_countries()))
            value = registry_iban(country, self.rng)
        try:
            iban = IBAN(value)  # schwifty and python-stdnum decide what an IBAN is, not the code under test
        except ValueError:
            return self.iban()
        if not stdnum_iban.is_valid(iban.compact):  # faker's BBAN layouts do not always follow the registry
            return self.iban()
        return iban.formatted if self.rng.random() < 0.4 else iban.compact

    def ssn(self) -> str:
        value: str = self.fake["en_US"].ssn()
        return value.replace("-", " ") if self.rng.random() < 0.15 else value

    def ip(self) -> str:
        kind = self.rng.random()
        if kind < 0.45:
            return str(self.fake["en_US"].ipv4_public())
        if kind < 0.7:
            return str(self.fake["en_US"].ipv4_private())
        address = ipaddress.IPv6Address(self.fake["en_US"].ipv6())
        return address.compressed if self.rng.random() < 0.6 else address.exploded

    def phone(self) -> str:
        if self.rng.random() < 0.55:
            locale = self.rng.choice(sorted(PHONE_LOCALES))
            value: str = self.fake[locale].phone_number()
            try:
                number = phonenumbers.parse(value, PHONE_LOCALES[locale])
            except phonenumbers.NumberParseException:
                return self.phone()
            return value if phonenumbers.is_possible_number(number) else self.phone()
        return self.example_phone()

    def example_phone(self) -> str:
        """One of libphonenumber's example numbers with its last digits varied (kept only while still valid), in
        international format for any region, or national format for a configured region."""
        national = self.rng.random() < 0.4
        region = self.rng.choice(sorted(set(PHONE_LOCALES.values())) if national else self.regions)
        example = phonenumbers.example_number_for_type(region, self.rng.choice(_PHONE_TYPES))
        if example is None:
            return self.example_phone()
        for _ in range(8):
            nsn = str(example.national_number)
            k = self.rng.randint(1, min(4, len(nsn) - 2))
            varied = nsn[:-k] + "".join(self.rng.choice(string.digits) for _ in range(k))
            candidate = phonenumbers.PhoneNumber(
                country_code=example.country_code,
                national_number=int(varied),
                italian_leading_zero=example.italian_leading_zero,
            )
            if phonenumbers.is_valid_number(candidate):
                example = candidate
                break
        fmt = (
            phonenumbers.PhoneNumberFormat.NATIONAL
            if national
            else self.rng.choice((phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164))
        )
        return phonenumbers.format_number(example, fmt)

    # --- look-alikes (never labelled) ------------------------------------------------------------------------
    def address(self) -> str:
        value: str = self.locale().address()
        return value.replace("\n", self.rng.choice((", ", " ", "\n")))

    def postcode(self) -> str:
        return str(self.locale().postcode())

    def name(self) -> str:
        return str(self.locale().name())

    def order(self) -> str:
        r = self.rng
        return self.one_of(
            lambda: f"#{r.randint(10_000, 99_999_999)}",
            lambda: f"ORD-{r.randint(2019, 2026)}-{r.randint(1, 999_999):06d}",
            lambda: f"{r.randint(100, 999)}-{r.randint(0, 9_999_999):07d}-{r.randint(0, 9_999_999):07d}",
            lambda: f"INV/{r.randint(2019, 2026)}/{r.randint(1, 99_999):05d}",
            lambda: str(r.randint(1_000_000, 99_999_999)),
            lambda: f"1Z{''.join(r.choice(string.ascii_uppercase + string.digits) for _ in range(16))}",
        )

    def timestamp(self) -> str:
        # fixed bounds: relative ones ("-6y") move with the clock, and the same seed must give the same text
        when = self.fake["en_US"].date_time_between(start_date=_EARLIEST, end_date=_LATEST)
        r = self.rng.random()
        if r < 0.25:
            return when.isoformat(timespec="seconds") + "Z"
        if r < 0.45:
            return when.strftime("%Y-%m-%d %H:%M:%S")
        if r < 0.6:
            return str(int(when.timestamp()))
        if r < 0.72:
            return str(int(when.timestamp() * 1000))
        if r < 0.86:
            return when.strftime("%d.%m.%Y %H:%M")
        return when.strftime("%a, %d %b %Y %H:%M:%S +0000")

    def version(self) -> str:
        r = self.rng
        return self.one_of(
            lambda: f"v{r.randint(0, 20)}.{r.randint(0, 40)}.{r.randint(0, 300)}",
            lambda: f"{r.randint(1, 12)}.{r.randint(0, 9)}.{r.randint(0, 99)}.{r.randint(0, 9999)}",
            lambda: f"10.0.{r.randint(10_000, 26_000)}.{r.randint(1, 5000)}",
            lambda: f"{r.randint(1, 5)}.{r.randint(0, 30)}.{r.randint(0, 9)}-rc.{r.randint(1, 5)}",
        )

    def other(self) -> str:
        """Numbers that are not PII: ids, ISBNs, money, counts, durations, ports, percentages."""
        r = self.rng
        return self.one_of(
            lambda: str(self.fake["en_US"].uuid4()),
            lambda: self.fake["en_US"].isbn13(),
            lambda: f"€{r.randint(1, 99_999):,}.{r.randint(0, 99):02d}".replace(",", " "),
            lambda: f"{r.randint(1, 999)} {r.randint(0, 999):03d} {r.randint(0, 999):03d} rows",
            lambda: f"{r.randint(1, 99_999)} ms",
            lambda: f"port {r.randint(1024, 65_535)}",
            lambda: f"{r.uniform(0, 100):.2f}%",
            lambda: self.fake["en_US"].sha1()[: r.choice((7, 12, 40))],
        )


_TEMPLATES = (
    "User {name} ({EMAIL_ADDRESS}) updated profile: phone {PHONE_NUMBER}, address {address}.",
    "Payment with card {CREDIT_CARD} declined for order {order} at {timestamp}.",
    "transfer from {IBAN_CODE} to other bank, ref {order}, amount {other}",
    "login ok user={EMAIL_ADDRESS} ip={IP_ADDRESS} ts={timestamp} client={version}",
    "Ship to {name}, {address}. Tel: {PHONE_NUMBER}",
    "SSN {US_SSN} on file for {name}; updated {timestamp}.",
    '{{"email": "{EMAIL_ADDRESS}", "phone": "{PHONE_NUMBER}", "order_id": "{order}", "zip": "{postcode}"}}',
    "Call me at {PHONE_NUMBER} or mail {EMAIL_ADDRESS}, I am at {address} until {timestamp}.",
    "Ticket {order}: customer at {address} reports outage since {timestamp}; contact {PHONE_NUMBER}.",
    "Deployed build {version} to {IP_ADDRESS} at {timestamp} ({other}).",
    "{name}\n{address}\n{PHONE_NUMBER} office\n{EMAIL_ADDRESS}",
    "Refund to {CREDIT_CARD} processed; tracking {order}, {other}.",
    "Please pay invoice {order} to IBAN {IBAN_CODE} before {timestamp}.",
    "Delivery address: {address} (postcode {postcode}), order {order}, weight {other}",
    "{timestamp} INFO request from {IP_ADDRESS} took {other} version={version}",
    "Customer {name}, born {timestamp}, SSN {US_SSN}, card {CREDIT_CARD}, mobile {PHONE_NUMBER}.",
    "Hi, my new number is {PHONE_NUMBER} and my old one was {PHONE_NUMBER}. I moved to {address}.",
    "Account {IBAN_CODE} owned by {name} at {address}, opened {timestamp}.",
    "Stored {other} for {EMAIL_ADDRESS}; next sync {timestamp}; server {IP_ADDRESS}.",
    "Order {order} shipped to {address} on {timestamp}, {other}.",
    "Reach {name} on {PHONE_NUMBER}.",
    "Card on file: {CREDIT_CARD} (exp {expiry}), billing zip {postcode}.",
    "Release {version} fixes issue {order}; see {other}.",
)


_EARLIEST = dt.datetime(2020, 1, 1)
_LATEST = dt.datetime(2027, 12, 31)


def generate(count: int = 1500, seed: int = 20260601) -> list[Sample]:
    """`count` labelled samples, the same ones for the same seed."""
    values = _Values(seed)
    makers: dict[str, Callable[[], str]] = {
        "EMAIL_ADDRESS": values.email,
        "CREDIT_CARD": values.card,
        "IBAN_CODE": values.iban,
        "US_SSN": values.ssn,
        "IP_ADDRESS": values.ip,
        "PHONE_NUMBER": values.phone,
        "name": values.name,
        "address": values.address,
        "postcode": values.postcode,
        "order": values.order,
        "timestamp": values.timestamp,
        "version": values.version,
        "other": values.other,
        "expiry": lambda: f"{values.rng.randint(1, 12):02d}/{values.rng.randint(25, 33)}",
    }
    samples = []
    for _ in range(count):
        template = values.rng.choice(_TEMPLATES)
        sample = Sample("")
        parts: list[str] = []
        length = 0
        for literal, name, _, _ in string.Formatter().parse(template):
            parts.append(literal)
            length += len(literal)
            if name is None:
                continue
            value = makers[name]()
            if name in QUALITY_TYPES:
                sample.spans.append(Span(name, length, length + len(value), value))
            parts.append(value)
            length += len(value)
        sample.text = "".join(parts)
        samples.append(sample)
    return samples


def iban_registry() -> dict[str, str]:
    """Country code -> BBAN format of SWIFT's IBAN registry, as python-stdnum ships it (not our copy)."""
    from stdnum import numdb

    return {entry[1]: entry[3]["bban"] for entry in numdb.get("iban").prefixes}


def registry_iban(country: str, rng: random.Random) -> str:
    """A random IBAN built from the registry's BBAN format (python-stdnum's copy) with ISO 7064 check digits."""
    classes = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}
    bban = "".join(
        rng.choice(classes[kind])
        for count, kind in re.findall(r"(\d+)!([nac])", iban_registry()[country])
        for _ in range(int(count))
    )
    check = 98 - int("".join(str(int(ch, 36)) for ch in bban + country + "00")) % 97
    return f"{country}{check:02d}{bban}"


def _iban_countries() -> set[str]:
    return set(iban_registry())


def from_presidio_research(items: Iterable[dict[str, Any]]) -> list[Sample]:
    """The shared presidio-research records as samples."""
    return [
        Sample(
            item["full_text"],
            [Span(s["entity_type"], s["start_position"], s["end_position"], s["entity_value"]) for s in item["spans"]],
        )
        for item in items
    ]


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float
    misses: tuple[str, ...]
    false_alarms: tuple[str, ...]


Found = Sequence[tuple[str, int, int]]  # (entity type, start, end)


def score(samples: Sequence[Sample], found: Sequence[Found], types: Sequence[str] = QUALITY_TYPES) -> dict[str, Score]:
    """Precision, recall and F1 per type; a finding counts when it overlaps a labelled span of its type."""
    tp: Counter[str] = Counter()
    misses: dict[str, list[str]] = {t: [] for t in types}
    alarms: dict[str, list[str]] = {t: [] for t in types}
    for sample, spans in zip(samples, found, strict=True):
        gold = [g for g in sample.spans if g.entity_type in types]
        for t, a, b in spans:
            if t not in types:
                continue
            if any(g.entity_type == t and a < g.end and g.start < b for g in gold):
                tp[t] += 1
            else:
                alarms[t].append(sample.text[a:b])
        for g in gold:
            if not any(t == g.entity_type and a < g.end and g.start < b for t, a, b in spans):
                misses[g.entity_type].append(g.value)
    out = {}
    for t in types:
        p = tp[t] / max(1, tp[t] + len(alarms[t]))
        r = tp[t] / max(1, tp[t] + len(misses[t]))
        out[t] = Score(p, r, 2 * p * r / max(1e-9, p + r), tuple(misses[t]), tuple(alarms[t]))
    return out
