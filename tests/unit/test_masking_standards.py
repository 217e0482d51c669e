"""Zero misses on the values the standards define: every country of the ISO 13616 IBAN registry, libphonenumber's
example numbers for every region, every card network's IIN ranges and lengths, and the networks' published test
card numbers; and the cases that once slipped through (issue 12)."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schwifty import IBAN
from stdnum import iban as stdnum_iban

from coresdk.masking.cards import IIN_RANGES, card_network, valid_card
from coresdk.masking.detectors import DEFAULT_PHONE_REGIONS, detect
from coresdk.masking.iban_registry import BBAN_FORMATS, IBAN_LENGTHS, valid_iban
from tests.support.pii_corpus import iban_registry, luhn_complete, registry_iban


def spans(text: str, entity: str) -> list[str]:
    return [text[f.start : f.end] for f in detect(text) if f.entity_type == entity]


def test_our_iban_registry_is_swifts() -> None:
    """The table equals the registry as python-stdnum ships it, and schwifty agrees on every length."""
    assert iban_registry() == BBAN_FORMATS
    for code, length in IBAN_LENGTHS.items():
        assert len(IBAN.random(country_code=code, random=random.Random(0), use_registry=False).compact) == length


@pytest.mark.parametrize("country", sorted(BBAN_FORMATS))
def test_every_registry_country_is_found_in_running_text(country: str) -> None:
    rng = random.Random(country)
    for _ in range(5):
        compact = registry_iban(country, rng)
        assert stdnum_iban.is_valid(compact, check_country=False)
        formatted = " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
        for written in (compact, formatted):
            text = f"transfer from {written} to other bank"
            assert spans(text, "IBAN_CODE") == [written], text
            assert spans(f"iban:{written}, thanks", "IBAN_CODE") == [written]


def test_iban_never_swallows_the_next_word() -> None:
    assert spans("transfer from GB56HXDO88167774656119 to other bank", "IBAN_CODE") == ["GB56HXDO88167774656119"]
    assert spans("to GB82 WEST 1234 5698 7654 32 12 times", "IBAN_CODE") == ["GB82 WEST 1234 5698 7654 32"]
    assert not valid_iban("GB56HXDO8816777465611")  # one short
    assert not valid_iban("GB5612DO88167774656119")  # digits where the registry wants letters


@settings(max_examples=150, deadline=None)
@given(
    country=st.sampled_from(sorted(BBAN_FORMATS)),
    seed=st.integers(0, 2**32),
    word=st.from_regex(r"[a-z]{1,8}", fullmatch=True),
)
def test_iban_followed_by_any_word_is_found_exactly(country: str, seed: int, word: str) -> None:
    iban = registry_iban(country, random.Random(seed))
    assert spans(f"from {iban} {word} and more", "IBAN_CODE") == [iban]
    assert spans(f"from {iban.lower()} {word}", "IBAN_CODE") == [iban.lower()]


# The networks' and acquirers' published test card numbers
TEST_CARDS = (
    "4111111111111111", "4012888888881881", "4222222222222", "4242424242424242", "4000056655665556",
    "5555555555554444", "5105105105105100", "2223003122003222", "2221000000000009", "5200828282828210",
    "378282246310005", "371449635398431", "378734493671000",
    "6011111111111117", "6011000990139424", "6445644564456445",
    "3056930009020004", "36227206271667", "38520000023237",
    "3566002020360505", "3530111333300000", "180000000000002", "213100000000001",
    "6200000000000005", "6250941006528599",
    "6759649826438453", "6304000000000000", "5018000000000009",
    "2200000000000004",
)  # fmt: skip


@pytest.mark.parametrize("number", [n for n in TEST_CARDS if valid_card(n)])
def test_published_test_cards_are_found(number: str) -> None:
    grouped = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    for written in (number, grouped, grouped.replace(" ", "-")):
        assert spans(f"paid with {written} yesterday", "CREDIT_CARD") == [written]


def test_the_published_test_cards_are_luhn_valid() -> None:
    assert [n for n in TEST_CARDS if not valid_card(n)] == []


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_every_iin_range_and_length_is_found(data: st.DataObject) -> None:
    """Any number in any network's range, of any of its lengths, with a Luhn check digit."""
    r = data.draw(st.sampled_from(IIN_RANGES))
    length = data.draw(st.sampled_from(sorted(r.lengths)))
    prefix = str(data.draw(st.integers(int(r.low), int(r.high)))).zfill(len(r.low))
    body = prefix + data.draw(
        st.text("0123456789", min_size=length - len(prefix) - 1, max_size=length - len(prefix) - 1)
    )
    number = luhn_complete(body)
    assert card_network(number) is not None
    assert spans(f"card {number} ok", "CREDIT_CARD") == [number]


def test_jcb_found_in_all_its_forms() -> None:
    for body in ("352100000000000", "359000000000000", "353011133330000", "18001234567890", "21311234567890"):
        number = luhn_complete(body)
        assert spans(f"card {number} ok", "CREDIT_CARD") == [number], number


def _examples() -> list[tuple[str, str, str]]:
    """(region, format, number) for every example number libphonenumber ships: international and E.164 for every
    region, national format for the configured default regions."""
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in phonenumbers.PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            formats = [phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164]
            if region in DEFAULT_PHONE_REGIONS:
                formats.append(phonenumbers.PhoneNumberFormat.NATIONAL)
            out += [(region, str(f), phonenumbers.format_number(example, f)) for f in formats]
    return sorted(set(out))


def test_libphonenumber_example_numbers_are_all_found() -> None:
    examples = _examples()
    assert len(examples) > 2000
    missed = [(r, f, n) for r, f, n in examples if not spans(f"please call {n} today", "PHONE_NUMBER")]
    assert missed == []


@pytest.mark.parametrize("number", ["07700 063 966", "9498777106", "+447700677662", "(415) 555-2671", "+49 30 901820"])
def test_phones_that_were_missed_are_found(number: str) -> None:
    assert spans(f"contact: {number} or mail", "PHONE_NUMBER") == [number]
    assert spans(f"{number}", "PHONE_NUMBER") == [number]


@pytest.mark.parametrize(
    "text",
    [
        "Skolevej 370 3911 Vig",  # house number and postcode
        "Rua das Flores 12, 3610-114 Tarouca",
        "Av Caetana Azevedo, 72 6235-123 Agualva-Cacém",
        "Schulzring 166 87033 Burglengenfeld",
        "ulica Jadwigi 02 47-621 Lublin",
        "Suite 680 36 4022 Oakridge Lane",
        "Apt. 722 20 40 rue Victor Hugo",
        "order 9498777106 shipped",
        "my driver's license number is 341308170",
        "ts=1646465902 and 1646465902599 ms",
        "imported 322 334 676 rows",
        "ISBN 978-0-8293-2053-4",
        "build 10.0.19041.1 and v2.14.3",
        "at 2024-03-15 10:30:00",
    ],
)
def test_address_and_identifier_numbers_are_not_phones(text: str) -> None:
    assert spans(text, "PHONE_NUMBER") == []


def test_server_address_after_a_word_ending_in_ver() -> None:
    """ "server 10.1.2.3" used to be read as "ver 10.1.2.3", a version string."""
    assert spans("next sync done; server 218.244.167.205.", "IP_ADDRESS") == ["218.244.167.205"]
    assert spans("server 8a2a:3119:5905:125d:306e:1a5d:49d3:73c4", "IP_ADDRESS") != []
    assert spans("release v10.1.2.3 and version 10.1.2.3", "IP_ADDRESS") == []


def test_order_numbers_in_other_layouts_are_not_cards() -> None:
    assert spans("order 650-1294302-3075617 shipped", "CREDIT_CARD") == []
    assert spans("card 4111 1111 1111 1111 2025", "CREDIT_CARD") == ["4111 1111 1111 1111"]
