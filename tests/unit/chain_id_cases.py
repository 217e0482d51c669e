"""Chain ids for generated tests: every name of the grammar, and the hostile table (control characters, unicode,
lengths 0 and 129+, "/", "..", spaces, newlines, the note-injection id)."""

from __future__ import annotations

from hypothesis import strategies as st

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-"
NAMED_HOSTILE = [
    "",
    ".",
    "..",
    "../../etc",
    "a/b",
    "/",
    "a b",
    " a",
    "a\n",
    "victim\n1\nAAAA",
    "a\r\nb",
    "a\tb",
    "a\x00b",
    "\x7f",
    "caf\u00e9",
    "\uff41",  # fullwidth a
    "a\u200bb",  # zero-width space
    "\u0430",  # Cyrillic a
    "x" * 129,
    "x" * 300,
    "a\\b",
    "a+b",
    "a%2fb",
]

valid_ids = st.text(alphabet=ALPHABET, min_size=1, max_size=128).filter(lambda s: s not in (".", ".."))


@st.composite
def _with_foreign_char(draw: st.DrawFn) -> str:
    base = draw(st.text(alphabet=ALPHABET, max_size=60))
    bad = draw(st.characters(blacklist_characters=ALPHABET, blacklist_categories=("Cs",)))
    at = draw(st.integers(0, len(base)))
    return base[:at] + bad + base[at:]


hostile_ids = st.one_of(
    st.sampled_from(NAMED_HOSTILE),
    _with_foreign_char(),
    st.text(alphabet=ALPHABET, min_size=129, max_size=400),
)
