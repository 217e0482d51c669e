"""The one grammar of a chain id: `[A-Za-z0-9._:-]{1,128}`.

A chain id is a name, not data: it becomes a line of a signed checkpoint note, a file name in the directory sink, a
syslog structured-data value and a database key. Anything outside this grammar (a newline that would forge note
lines, `/` or `..` that would leave the sink directory, 300 characters that no file system takes) is refused
wherever a chain id enters: the sidecar's settings and RPCs, the control plane's ingest, the checkpoint signer and
the offline verifier all call this module, so they cannot drift apart. A chain-id prefix (a sidecar's binding)
obeys the same grammar. Refusals are `InvalidChainId`, mapped at each edge (400 JSON, INVALID_ARGUMENT, a
ConfigError naming the variable).
"""

from __future__ import annotations

import re

MAX_LENGTH = 128
_GRAMMAR = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# "." and ".." fit the grammar but name directories wherever a chain id becomes a path component: never chain ids.
_DOT_NAMES = frozenset({".", ".."})
DESCRIPTION = "1-128 characters of letters, digits, . _ : - (ASCII), other than . and .."


def problem(value: object) -> str:
    """What is wrong, quoting the value with repr() (cut to 40 characters) so control characters stay visible."""
    shown = repr(value) if not isinstance(value, str) or len(value) <= 40 else repr(value[:40]) + "..."
    return f"must be {DESCRIPTION}; got {shown}"


class InvalidChainId(ValueError):
    """A chain id outside the grammar."""

    def __init__(self, value: object, what: str = "chain_id") -> None:
        super().__init__(f"{what} {problem(value)}")
        self.value = value


_KNOWN_VALID: set[str] = set()  # ids already judged valid: a batch names the same chain in every record
_KNOWN_MAX = 4096


def is_valid(value: object) -> bool:
    if type(value) is str and value in _KNOWN_VALID:
        return True
    # fullmatch on str only: `$` semantics and bytes cannot sneak a trailing newline through
    valid = isinstance(value, str) and _GRAMMAR.fullmatch(value) is not None and value not in _DOT_NAMES
    if valid and type(value) is str:
        if len(_KNOWN_VALID) >= _KNOWN_MAX:
            _KNOWN_VALID.clear()
        _KNOWN_VALID.add(value)
    return valid


def check(value: object, what: str = "chain_id") -> str:
    """The value itself if it is a chain id; InvalidChainId otherwise."""
    if not is_valid(value):
        raise InvalidChainId(value, what)
    assert isinstance(value, str)
    return value
