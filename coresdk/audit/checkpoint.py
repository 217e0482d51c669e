"""Signed checkpoints in the C2SP signed-note format, with Ed25519 (pynacl).

    <origin>\\n<tree size>\\n<base64 root hash>\\n\\n— <key name> <base64(key id ‖ signature)>\\n

The key id is the first four bytes of SHA-256(key name ‖ "\\n" ‖ 0x01 ‖ public key). A verifier key is published as
"<name>+<hex key id>+<base64(0x01 ‖ public key)>".
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

_ED25519 = b"\x01"


class CheckpointError(ValueError):
    pass


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes

    def body(self) -> bytes:
        return f"{self.origin}\n{self.tree_size}\n{base64.b64encode(self.root_hash).decode()}\n".encode()


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
        if len(lines) < 3 or not lines[1].isdigit():
            raise CheckpointError("malformed checkpoint body")
        try:
            root = base64.b64decode(lines[2], validate=True)
        except ValueError:
            raise CheckpointError("malformed root hash") from None
        if len(root) != 32:
            raise CheckpointError("malformed root hash")
        return Checkpoint(lines[0], int(lines[1]), root)
    raise CheckpointError("no signature by the expected key")
