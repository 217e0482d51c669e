"""IBAN formats of every country in the ISO 13616 registry (SWIFT's IBAN registry, release 101): the BBAN structure
after the country code and the two check digits, in the registry's own notation (`4!a6!n8!n`: 4 letters, 6 digits,
8 digits; `c` is any alphanumeric). Detection is bounded by these lengths and checked against these structures, so a
candidate never runs into the next word and a string that only looks like an IBAN is not reported."""

from __future__ import annotations

import re
from functools import cache

BBAN_FORMATS: dict[str, str] = {
    "AD": "4!n4!n12!c",  # Andorra
    "AE": "3!n16!n",  # United Arab Emirates (The)
    "AL": "8!n16!c",  # Albania
    "AT": "5!n11!n",  # Austria
    "AZ": "4!a20!c",  # Azerbaijan
    "BA": "3!n3!n8!n2!n",  # Bosnia and Herzegovina
    "BE": "3!n7!n2!n",  # Belgium
    "BG": "4!a4!n2!n8!c",  # Bulgaria
    "BH": "4!a14!c",  # Bahrain
    "BI": "5!n5!n11!n2!n",  # Burundi
    "BR": "8!n5!n10!n1!a1!c",  # Brazil
    "BY": "4!c4!n16!c",  # Belarus
    "CH": "5!n12!c",  # Switzerland
    "CR": "4!n14!n",  # Costa Rica
    "CY": "3!n5!n16!c",  # Cyprus
    "CZ": "4!n16!n",  # Czechia
    "DE": "8!n10!n",  # Germany
    "DJ": "5!n5!n11!n2!n",  # Djibouti
    "DK": "4!n9!n1!n",  # Denmark
    "DO": "4!c20!n",  # Dominican Republic
    "EE": "2!n14!n",  # Estonia
    "EG": "4!n4!n17!n",  # Egypt
    "ES": "4!n4!n1!n1!n10!n",  # Spain
    "FI": "3!n11!n",  # Finland
    "FK": "2!a12!n",  # Falkland Islands (Malvinas)
    "FO": "4!n9!n1!n",  # Faroe Islands
    "FR": "5!n5!n11!c2!n",  # France
    "GB": "4!a6!n8!n",  # United Kingdom
    "GE": "2!a16!n",  # Georgia
    "GI": "4!a15!c",  # Gibraltar
    "GL": "4!n9!n1!n",  # Greenland
    "GR": "3!n4!n16!c",  # Greece
    "GT": "4!c20!c",  # Guatemala
    "HN": "4!a20!n",  # Honduras
    "HR": "7!n10!n",  # Croatia
    "HU": "3!n4!n1!n15!n1!n",  # Hungary
    "IE": "4!a6!n8!n",  # Ireland
    "IL": "3!n3!n13!n",  # Israel
    "IQ": "4!a3!n12!n",  # Iraq
    "IS": "4!n2!n6!n10!n",  # Iceland
    "IT": "1!a5!n5!n12!c",  # Italy
    "JO": "4!a4!n18!c",  # Jordan
    "KW": "4!a22!c",  # Kuwait
    "KZ": "3!n13!c",  # Kazakhstan
    "LB": "4!n20!c",  # Lebanon
    "LC": "4!a24!c",  # Saint Lucia
    "LI": "5!n12!c",  # Liechtenstein
    "LT": "5!n11!n",  # Lithuania
    "LU": "3!n13!c",  # Luxembourg
    "LV": "4!a13!c",  # Latvia
    "LY": "3!n3!n15!n",  # Libya
    "MC": "5!n5!n11!c2!n",  # Monaco
    "MD": "2!c18!c",  # Moldova, Republic of
    "ME": "3!n13!n2!n",  # Montenegro
    "MK": "3!n10!c2!n",  # North Macedonia
    "MN": "4!n12!n",  # Mongolia
    "MR": "5!n5!n11!n2!n",  # Mauritania
    "MT": "4!a5!n18!c",  # Malta
    "MU": "4!a2!n2!n12!n3!n3!a",  # Mauritius
    "NI": "4!a20!n",  # Nicaragua
    "NL": "4!a10!n",  # Netherlands (The)
    "NO": "4!n6!n1!n",  # Norway
    "OM": "3!n16!c",  # Oman
    "PK": "4!a16!c",  # Pakistan
    "PL": "8!n16!n",  # Poland
    "PS": "4!a21!c",  # Palestine, State of
    "PT": "4!n4!n11!n2!n",  # Portugal
    "QA": "4!a21!c",  # Qatar
    "RO": "4!a16!c",  # Romania
    "RS": "3!n13!n2!n",  # Serbia
    "RU": "9!n5!n15!c",  # Russian Federation
    "SA": "2!n18!c",  # Saudi Arabia
    "SC": "4!a2!n2!n16!n3!a",  # Seychelles
    "SD": "2!n12!n",  # Sudan
    "SE": "3!n16!n1!n",  # Sweden
    "SI": "5!n8!n2!n",  # Slovenia
    "SK": "4!n6!n10!n",  # Slovakia
    "SM": "1!a5!n5!n12!c",  # San Marino
    "SO": "4!n3!n12!n",  # Somalia
    "ST": "4!n4!n11!n2!n",  # Sao Tome and Principe
    "SV": "4!a20!n",  # El Salvador
    "TL": "3!n14!n2!n",  # Timor-Leste
    "TN": "2!n3!n13!n2!n",  # Tunisia
    "TR": "5!n1!n16!c",  # Turkiye
    "UA": "6!n19!c",  # Ukraine
    "VA": "3!n15!n",  # Holy See
    "VG": "4!a16!n",  # Virgin Islands (British)
    "XK": "4!n10!n2!n",  # Kosovo
    "YE": "4!a4!n18!c",  # Yemen
}

_CLASSES = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Z0-9]"}
_SPEC_PART = re.compile(r"(\d+)!([nac])")


def _parts(spec: str) -> list[tuple[int, str]]:
    return [(int(count), kind) for count, kind in _SPEC_PART.findall(spec)]


IBAN_LENGTHS: dict[str, int] = {code: 4 + sum(n for n, _ in _parts(spec)) for code, spec in BBAN_FORMATS.items()}


@cache
def _structure(country: str) -> re.Pattern[str] | None:
    spec = BBAN_FORMATS.get(country)
    if spec is None:
        return None
    return re.compile("".join(f"{_CLASSES[kind]}{{{n}}}" for n, kind in _parts(spec)))


def mod97_ok(iban: str) -> bool:
    """ISO 7064 MOD 97-10 over the rearranged IBAN (letters as 10..35), as ISO 13616 defines the check digits."""
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def valid_iban(text: str) -> bool:
    """True for an IBAN (electronic or print format) whose country, length, BBAN structure and check digits all agree
    with the registry."""
    iban = text.replace(" ", "").upper()
    structure = _structure(iban[:2])
    return (
        structure is not None
        and IBAN_LENGTHS[iban[:2]] == len(iban)
        and iban[2:4].isdigit()
        and structure.fullmatch(iban[4:]) is not None
        and mod97_ok(iban)
    )


def candidate_pattern() -> str:
    """One RE2 alternative per IBAN length (the codes of its countries), two check digits, then exactly the remaining
    length in alphanumerics (single spaces allowed between them, for the print format) and a word boundary. A match
    can end nowhere but at its country's length, so the following word is never swallowed. (Grouping by length keeps
    the automaton small enough for RE2's DFA.)"""
    by_length: dict[int, list[str]] = {}
    for code, length in IBAN_LENGTHS.items():
        by_length.setdefault(length, []).append(code)
    branches = "|".join(
        f"(?:{'|'.join(sorted(codes))})[0-9]{{2}}(?: ?[A-Za-z0-9]){{{length - 4}}}"
        for length, codes in sorted(by_length.items())
    )
    return rf"\b(?i:{branches})\b"
