"""gateway.paths in process: a path is accepted only when every reader of it agrees on what it means."""

from __future__ import annotations

import posixpath
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from gateway.paths import AmbiguousPath, canonical_target

# Every spelling of '.', '/', '\' and NUL an upstream might decode, in any case.
DOT = st.sampled_from([".", "%2e", "%2E"])
SEPARATORS = st.sampled_from(["%2f", "%2F", "%5c", "%5C", "\\", "%00", "%25", ";", "%3b"])
PLAIN = st.text(alphabet="abcXYZ019-_~", min_size=1, max_size=6)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 as a client library applies it."""
    out = posixpath.normpath(path)
    return out + ("/" if path.endswith("/") and out != "/" else "")


@given(st.lists(PLAIN, min_size=1, max_size=5), st.integers(0, 5), st.lists(DOT, min_size=1, max_size=2))
def test_every_spelling_of_a_dot_segment_is_refused(segments: list[str], at: int, dots: list[str]) -> None:
    segments.insert(min(at, len(segments)), "".join(dots))
    with pytest.raises(AmbiguousPath):
        canonical_target("/" + "/".join(segments))


@given(st.lists(PLAIN, min_size=1, max_size=5), SEPARATORS, st.booleans())
def test_encoded_separators_and_parameters_are_refused(segments: list[str], sep: str, upper: bool) -> None:
    segments[-1] += sep.upper() if upper else sep
    with pytest.raises(AmbiguousPath):
        canonical_target("/" + "/".join(segments))


@given(st.text(min_size=1, max_size=40))
def test_accepted_paths_have_one_reading(path: str) -> None:
    """Whatever the input: an accepted path is unchanged by dot removal, decodes to the same segments it has, and is
    sent by the proxy client exactly as matched."""
    try:
        target = canonical_target("/" + path)
    except AmbiguousPath:
        return
    raw = target.path
    assert _remove_dot_segments(raw) == raw
    decoded = unquote(raw)
    assert decoded.split("/") == [unquote(s) for s in raw.split("/")]
    assert all(seg not in (".", "..", "") for seg in decoded.split("/")[1:]) or raw == "/"
    assert not any(c in decoded for c in "\\;\x00")
    assert URL("http://upstream" + raw, encoded=True).raw_path == raw


@pytest.mark.parametrize(
    "target",
    [
        "/a//b",
        "/a/",
        "a/b",
        "http://x/a",
        "*",
        "/a#b",
        "/a b",
        "/a\tb",
        "/é",
        "/a%4",
        "/a%g0",
        "/%41",
        "/%7E",
        "/a?b c",
    ],
)
def test_refused_examples(target: str) -> None:
    with pytest.raises(AmbiguousPath) as err:
        canonical_target(target)
    assert err.value.reason == "AMBIGUOUS_PATH"


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/", "/", ""),
        ("/v1/orders", "/v1/orders", ""),
        ("/v1/orders?x=%2e%2e/y", "/v1/orders", "x=%2e%2e/y"),
        ("/v1/t/%C3%A9", "/v1/t/%C3%A9", ""),
        ("/v1/t/a%20b", "/v1/t/a%20b", ""),
        ("/v1/t/a:b@c", "/v1/t/a:b@c", ""),
    ],
)
def test_accepted_examples(target: str, path: str, query: str) -> None:
    t = canonical_target(target)
    assert (t.path, t.query, t.raw) == (path, query, target)
