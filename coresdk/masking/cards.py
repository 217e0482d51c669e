"""Payment card numbers by the networks' own issuer identification number (IIN) ranges and lengths (ISO/IEC 7812),
checked with Luhn. The table is written from the networks' published ranges, not from sample data, so a network's
numbers are found wherever they come from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IinRange:
    network: str
    low: str  # inclusive prefix bounds of equal length: "2221".."2720" covers 2221xx..2720xx
    high: str
    lengths: frozenset[int]


def _r(network: str, low: str, high: str, *lengths: int) -> IinRange:
    return IinRange(network, low, high, frozenset(lengths))


_16_19 = (16, 17, 18, 19)
IIN_RANGES: tuple[IinRange, ...] = (
    _r("Visa", "4", "4", 13, 16, 19),
    _r("Mastercard", "51", "55", 16),
    _r("Mastercard", "2221", "2720", 16),  # the 2-series, since 2017
    _r("American Express", "34", "34", 15),
    _r("American Express", "37", "37", 15),
    _r("Discover", "6011", "6011", *_16_19),
    _r("Discover", "644", "649", *_16_19),
    _r("Discover", "65", "65", *_16_19),
    _r("Discover", "622126", "622925", *_16_19),  # co-branded UnionPay range
    _r("Diners Club", "300", "305", 14, *_16_19),
    _r("Diners Club", "3095", "3095", 14, *_16_19),
    _r("Diners Club", "36", "36", 14, *_16_19),
    _r("Diners Club", "38", "39", 14, *_16_19),
    _r("JCB", "3528", "3589", *_16_19),
    _r("JCB", "3088", "3094", *_16_19),  # JCB's original ranges, still in use
    _r("JCB", "3096", "3102", *_16_19),
    _r("JCB", "3112", "3120", *_16_19),
    _r("JCB", "3158", "3159", *_16_19),
    _r("JCB", "3337", "3349", *_16_19),
    # The rest of the 35 block: unassigned by JCB's published table, but used as JCB by issuers' test data and
    # generators; masking fails closed, so a Luhn-valid 16-19 digit 35 number is masked.
    _r("JCB", "35", "35", *_16_19),
    _r("JCB", "1800", "1800", 15),  # legacy 15-digit JCB
    _r("JCB", "2131", "2131", 15),
    _r("UnionPay", "62", "62", *_16_19),
    _r("UnionPay", "81", "81", *_16_19),  # 8100-8171, issued since 2016
    _r("Mir", "2200", "2204", *_16_19),
    _r("Maestro", "50", "50", *range(12, 20)),
    _r("Maestro", "56", "69", *range(12, 20)),  # Maestro shares 6x with Discover/UnionPay: checked after them
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_network(digits: str) -> str | None:
    """The network whose IIN range and lengths admit these digits, or None."""
    for r in IIN_RANGES:
        if len(digits) in r.lengths and r.low <= digits[: len(r.low)] <= r.high:
            return r.network
    return None


def valid_card(text: str) -> bool:
    """A card number (separators ignored): 12-19 digits in some network's IIN range and length, Luhn-valid."""
    digits = "".join(ch for ch in text if ch.isdigit())
    return 12 <= len(digits) <= 19 and card_network(digits) is not None and luhn_ok(digits)
