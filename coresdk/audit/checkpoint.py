"""Signed checkpoints in the C2SP signed-note format, with Ed25519 (pynacl).

    <origin>\\n<tree size>\\n<base64 root hash>\\n\\n— <key name> <base64(key id ‖ signature)>\\n

The key id is the first four bytes of SHA-256(key name ‖ "\\n" ‖ 0x01 ‖ public key). A verifier key is published as
"<name>+<hex key id>+<base64(0x01 ‖ public key)>".

The origin line names what the note is about: "<key name>/audit/<chain id>", or ".../retention" for the seal over a
pruned range. It is the only line built from outside input, so the signer refuses any origin it would not have
built itself (a chain id with a newline would otherwise let a caller choose the lines that follow it), and a reader
accepts exactly the three lines a checkpoint has.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from coresdk.audit import chain_id as chain_ids

_ED25519 = b"\x01"
RETENTION = "retention"


class CheckpointError(ValueError):
    pass


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes

    def body(self) -> bytes:
        return f"{self.origin}\n{self.tree_size}\n{base64.b64encode(self.root_hash).decode()}\n".encode()


def _check_key_name(name: str) -> None:
    # C2SP signed-note key names: non-empty, no whitespace, no "+"
    if not name or "+" in name or any(ch.isspace() for ch in name) or not name.isprintable():
        raise CheckpointError("key name must be non-empty, printable, without spaces or '+'")


def audit_origin(name: str, chain_id: str, kind: str = "") -> str:
    """The origin line of a chain's checkpoint ("" kind) or retention seal ("retention")."""
    _check_key_name(name)
    chain_ids.check(chain_id)
    if kind not in ("", RETENTION):
        raise CheckpointError(f"unknown checkpoint kind {kind!r}")
    return f"{name}/audit/{chain_id}" + (f"/{kind}" if kind else "")


def parse_origin(origin: str, name: str) -> tuple[str, str]:
    """(chain id, kind) of an origin line that audit_origin(name, ...) could have produced; CheckpointError else."""
    prefix = f"{name}/audit/"
    if not origin.startswith(prefix):
        raise CheckpointError(f"origin {origin!r} is not an audit checkpoint of {name}")
    chain_id, _, kind = origin[len(prefix) :].partition("/")
    if not chain_ids.is_valid(chain_id) or kind not in ("", RETENTION) or (not kind and origin.endswith("/")):
        raise CheckpointError(f"origin {origin[:200]!r} names no valid chain id")
    return chain_id, kind


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    return f"{name}+{key_id(name, public_key).hex()}+{base64.b64encode(_ED25519 + public_key).decode()}"


def parse_verifier_key(text: str) -> tuple[str, bytes]:
    try:
        name, hex_id, b64 = text.strip().split("+")
        raw = base64.b64decode(b64, validate=True)
    except ValueError:
        raise CheckpointError("malformed verifier key") from None
    if raw[:1] != _ED25519 or len(raw) != 33 or key_id(name, raw[1:]).hex() != hex_id:
        raise CheckpointError("verifier key does not match its id")
    return name, raw[1:]


def sign_checkpoint(checkpoint: Checkpoint, name: str, key: SigningKey) -> str:
    """The signed note; refuses (CheckpointError) an origin this signer would not build, so no input picks a line."""
    _check_key_name(name)
    chain_id, kind = parse_origin(checkpoint.origin, name)
    if audit_origin(name, chain_id, kind) != checkpoint.origin:
        raise CheckpointError("origin is not in canonical form")
    if checkpoint.tree_size < 0 or len(checkpoint.root_hash) != 32:
        raise CheckpointError("a checkpoint commits to a tree size >= 0 and a 32-byte root")
    body = checkpoint.body()
    sig = key.sign(body).signature
    line = base64.b64encode(key_id(name, bytes(key.verify_key)) + sig).decode()
    return body.decode() + f"\n\u2014 {name} {line}\n"


def open_checkpoint(note: str, name: str, public_key: bytes) -> Checkpoint:
    """Verify the note's signature by (name, public_key) and return its checkpoint."""
    body, sep, signatures = note.partition("\n\n")
    if not sep:
        raise CheckpointError("not a signed note")
    body_bytes = (body + "\n").encode()
    expected_id = key_id(name, public_key)
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014" or parts[1] != name:
            continue
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except ValueError:
            continue
        if raw[:4] != expected_id or len(raw) != 68:
            continue
        try:
            VerifyKey(public_key).verify(body_bytes, raw[4:])
        except BadSignatureError:
            raise CheckpointError("checkpoint signature is invalid") from None
        lines = body.split("\n")
        if len(lines) != 3 or not lines[1].isascii() or not lines[1].isdigit():
            raise CheckpointError("malformed checkpoint body")
        try:
            root = base64.b64decode(lines[2], validate=True)
        except ValueError:
            raise CheckpointError("malformed root hash") from None
        if len(root) != 32:
            raise CheckpointError("malformed root hash")
        return Checkpoint(lines[0], int(lines[1]), root)
    raise CheckpointError("no signature by the expected key")
