"""Signed tool manifests: a tool is trusted only as it was approved.

An MCP server describes its tools itself, and an agent reads those descriptions as instructions, so a server that
changes a tool's description or input schema after review has changed what the agent will do ("tool poisoning",
"rug pull"). A manifest pins one tool of one server: its name, version, the SHA-256 of its description and of its
RFC 8785 canonical input schema, and policy tags (`sql`, ...). A reviewer signs it with Ed25519; the gateway trusts
a tool only while a manifest signed by a trusted key, not revoked, matches what the server says right now.

Signed form (JSON): {"manifest": {...}, "signature": {"alg": "Ed25519", "key_id": "...", "value": "<base64>"}}.
The signature covers a fixed domain prefix and the canonical JSON of `manifest`, so it cannot be replayed as a
signature over anything else made with the same key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from coresdk.audit.canonical import canonical_bytes
from coresdk.errors import ConfigError, InvalidArgument, PermissionDenied

FORMAT = 1
ALG = "Ed25519"
PUBLIC_PREFIX = "ed25519:"
PRIVATE_PREFIX = "ed25519-seed:"
_DOMAIN = b"coresdk tool manifest v1\n"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_TAG = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_HEX = re.compile(r"[0-9a-f]{64}")
_REQUIRED = {"format", "id", "server", "tool", "version", "description_sha256", "input_schema_sha256", "tags"}
_OPTIONAL = {"sql_argument"}


class ManifestFormatError(InvalidArgument):
    """A manifest, signature or key that is not in the expected form."""


class ManifestRefused(PermissionDenied):
    """A tool the gateway must not trust. `reason` says why; `tool` and `server` name it."""

    def __init__(self, reason: str, message: str, server: str = "", tool: str = "") -> None:
        super().__init__(reason, message)
        self.server = server
        self.tool = tool


class ManifestMissing(ManifestRefused):
    pass


class ManifestBadSignature(ManifestRefused):
    pass


class ManifestUntrustedKey(ManifestRefused):
    pass


class ManifestDigestMismatch(ManifestRefused):
    pass


class ManifestRevoked(ManifestRefused):
    pass


def description_digest(description: str | None) -> str:
    """SHA-256 (hex) of the tool description as UTF-8; no description counts as the empty one."""
    return hashlib.sha256((description or "").encode("utf-8")).hexdigest()


def schema_digest(input_schema: Any) -> str:
    """SHA-256 (hex) of the RFC 8785 canonical JSON of the input schema: key order and number spelling do not
    matter, any change of content does."""
    try:
        return hashlib.sha256(canonical_bytes(input_schema)).hexdigest()
    except (TypeError, ValueError) as exc:
        raise ManifestFormatError("MANIFEST_INVALID", f"input schema is not canonical JSON: {exc}") from None


def key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


def encode_public_key(key: VerifyKey) -> str:
    return PUBLIC_PREFIX + base64.b64encode(bytes(key)).decode()


def decode_public_key(text: str) -> VerifyKey:
    raw = _decode_prefixed(text.strip(), PUBLIC_PREFIX, "public key")
    return VerifyKey(raw)


def encode_private_key(key: SigningKey) -> str:
    return PRIVATE_PREFIX + base64.b64encode(bytes(key)).decode()


def decode_private_key(text: str) -> SigningKey:
    return SigningKey(_decode_prefixed(text.strip(), PRIVATE_PREFIX, "private key"))


def _decode_prefixed(text: str, prefix: str, what: str) -> bytes:
    if not text.startswith(prefix):
        raise ManifestFormatError("MANIFEST_KEY_INVALID", f"a {what} starts with {prefix!r}")
    try:
        raw = base64.b64decode(text[len(prefix) :], validate=True)
    except ValueError:
        raise ManifestFormatError("MANIFEST_KEY_INVALID", f"the {what} is not base64") from None
    if len(raw) != 32:
        raise ManifestFormatError("MANIFEST_KEY_INVALID", f"an Ed25519 {what} has 32 bytes, not {len(raw)}")
    return raw


def build_manifest(
    *,
    id: str,
    server: str,
    tool: str,
    version: str,
    description: str | None,
    input_schema: Any,
    tags: Iterable[str] = (),
    sql_argument: str | None = None,
) -> dict[str, Any]:
    """The manifest (unsigned) for a tool as its server describes it now."""
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "id": id,
        "server": server,
        "tool": tool,
        "version": version,
        "description_sha256": description_digest(description),
        "input_schema_sha256": schema_digest(input_schema),
        "tags": sorted(set(tags)),
    }
    if sql_argument is not None:
        manifest["sql_argument"] = sql_argument
    check_manifest(manifest)
    return manifest


def _text(manifest: Mapping[str, Any], name: str, limit: int) -> str:
    value = manifest.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ManifestFormatError("MANIFEST_INVALID", f"manifest {name!r} must be a string of 1 to {limit} characters")
    return value


def check_manifest(manifest: Any) -> None:
    """Refuse (ManifestFormatError) anything but a well-formed manifest of this format."""
    if not isinstance(manifest, dict):
        raise ManifestFormatError("MANIFEST_INVALID", "a manifest is a JSON object")
    missing, unknown = _REQUIRED - set(manifest), set(manifest) - _REQUIRED - _OPTIONAL
    if missing or unknown:
        raise ManifestFormatError(
            "MANIFEST_INVALID", f"manifest members: missing {sorted(missing)}, unknown {sorted(unknown)}"
        )
    if manifest["format"] != FORMAT or isinstance(manifest["format"], bool):
        raise ManifestFormatError("MANIFEST_INVALID", f"manifest format must be {FORMAT}")
    if not _ID.fullmatch(_text(manifest, "id", 128)):
        raise ManifestFormatError("MANIFEST_INVALID", "manifest id: letters, digits and ._:- (at most 128)")
    _text(manifest, "server", 128)
    _text(manifest, "tool", 128)
    _text(manifest, "version", 64)
    for name in ("description_sha256", "input_schema_sha256"):
        if not isinstance(manifest[name], str) or not _HEX.fullmatch(manifest[name]):
            raise ManifestFormatError("MANIFEST_INVALID", f"manifest {name!r} must be 64 lower-case hex digits")
    tags = manifest["tags"]
    if (
        not isinstance(tags, list)
        or len(tags) > 16
        or any(not isinstance(t, str) or not _TAG.fullmatch(t) for t in tags)
    ):
        raise ManifestFormatError("MANIFEST_INVALID", "manifest tags: at most 16 lower-case names")
    if tags != sorted(set(tags)):
        raise ManifestFormatError("MANIFEST_INVALID", "manifest tags must be sorted and unique")
    if "sql_argument" in manifest:
        _text(manifest, "sql_argument", 128)


def _signed_bytes(manifest: Mapping[str, Any]) -> bytes:
    return _DOMAIN + canonical_bytes(dict(manifest))


def sign_manifest(manifest: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    check_manifest(dict(manifest))
    signature = key.sign(_signed_bytes(manifest)).signature
    return {
        "manifest": dict(manifest),
        "signature": {
            "alg": ALG,
            "key_id": key_id(bytes(key.verify_key)),
            "value": base64.b64encode(signature).decode(),
        },
    }


@dataclass(frozen=True)
class SignedManifest:
    """A manifest and its signature as read, not yet trusted."""

    manifest: dict[str, Any]
    key_id: str
    signature: bytes

    @property
    def id(self) -> str:
        return str(self.manifest["id"])

    @property
    def server(self) -> str:
        return str(self.manifest["server"])

    @property
    def tool(self) -> str:
        return str(self.manifest["tool"])


def parse_signed(document: Any) -> SignedManifest:
    if not isinstance(document, dict) or set(document) != {"manifest", "signature"}:
        raise ManifestFormatError("MANIFEST_INVALID", 'a signed manifest has exactly "manifest" and "signature"')
    check_manifest(document["manifest"])
    sig = document["signature"]
    if not isinstance(sig, dict) or set(sig) != {"alg", "key_id", "value"} or sig["alg"] != ALG:
        raise ManifestFormatError("MANIFEST_INVALID", f'the signature has "alg" ({ALG}), "key_id" and "value"')
    if not isinstance(sig["key_id"], str) or not isinstance(sig["value"], str):
        raise ManifestFormatError("MANIFEST_INVALID", "signature key_id and value are strings")
    try:
        value = base64.b64decode(sig["value"], validate=True)
    except ValueError:
        raise ManifestFormatError("MANIFEST_INVALID", "the signature value is not base64") from None
    if len(value) != 64:
        raise ManifestFormatError("MANIFEST_INVALID", "an Ed25519 signature has 64 bytes")
    return SignedManifest(document["manifest"], sig["key_id"], value)


def read_signed(path: Path) -> SignedManifest:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ManifestFormatError("MANIFEST_INVALID", f"{path}: not a readable JSON file ({exc})") from None
    try:
        return parse_signed(document)
    except ManifestFormatError as exc:
        raise ManifestFormatError(exc.reason, f"{path}: {exc.message}") from None


@dataclass(frozen=True)
class VerifiedManifest:
    """A tool the gateway may trust as it is now: what policy needs from its manifest."""

    id: str
    server: str
    tool: str
    version: str
    tags: tuple[str, ...]
    sql_argument: str | None
    key_id: str


class TrustStore:
    """Trusted keys, revoked manifest ids and the signed manifests of the tools the gateway fronts.

    One manifest per (server, tool). `server` is the name the operator gave the upstream in the gateway's
    configuration, never the name the server reports about itself."""

    def __init__(
        self,
        keys: Iterable[VerifyKey],
        revoked: Iterable[str] = (),
        manifests: Iterable[SignedManifest] = (),
    ) -> None:
        self._keys = {key_id(bytes(k)): k for k in keys}
        self._revoked = frozenset(revoked)
        self._manifests: dict[tuple[str, str], SignedManifest] = {}
        for signed in manifests:
            slot = (signed.server, signed.tool)
            if slot in self._manifests:
                raise ManifestFormatError(
                    "MANIFEST_DUPLICATE", f"two manifests for tool {signed.tool!r} of server {signed.server!r}"
                )
            self._manifests[slot] = signed

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def check_signature(self, signed: SignedManifest) -> None:
        """Refuse a revoked manifest, one signed by a key not trusted here, or a signature that does not verify."""
        server, tool = signed.server, signed.tool
        if signed.id in self._revoked:
            raise ManifestRevoked("MANIFEST_REVOKED", f"manifest {signed.id!r} is revoked", server, tool)
        key = self._keys.get(signed.key_id)
        if key is None:
            raise ManifestUntrustedKey(
                "MANIFEST_UNTRUSTED_KEY",
                f"manifest {signed.id!r} is signed by key {signed.key_id!r}, not trusted",
                server,
                tool,
            )
        try:
            key.verify(_signed_bytes(signed.manifest), signed.signature)
        except BadSignatureError:
            raise ManifestBadSignature(
                "MANIFEST_BAD_SIGNATURE", f"the signature of manifest {signed.id!r} does not verify", server, tool
            ) from None

    def manifest_for(self, server: str, name: str) -> SignedManifest:
        """The signed manifest of this tool, or ManifestMissing."""
        signed = self._manifests.get((server, name))
        if signed is None:
            raise ManifestMissing(
                "MANIFEST_MISSING", f"tool {name!r} of server {server!r} has no manifest", server, name
            )
        return signed

    @staticmethod
    def verified(signed: SignedManifest) -> VerifiedManifest:
        """What policy needs of a manifest whose signature was checked (check_signature)."""
        manifest = signed.manifest
        return VerifiedManifest(
            id=signed.id,
            server=signed.server,
            tool=signed.tool,
            version=str(manifest["version"]),
            tags=tuple(manifest["tags"]),
            sql_argument=manifest.get("sql_argument"),
            key_id=signed.key_id,
        )

    def verify_tool(self, server: str, name: str, description: str | None, input_schema: Any) -> VerifiedManifest:
        """The manifest that approves this tool exactly as described now, or ManifestRefused saying why not."""
        signed = self.manifest_for(server, name)
        self.check_signature(signed)
        manifest = signed.manifest
        changed = [] if manifest["description_sha256"] == description_digest(description) else ["description"]
        try:
            if manifest["input_schema_sha256"] != schema_digest(input_schema):
                changed.append("input schema")
        except ManifestFormatError:
            changed.append("input schema")
        if changed:
            raise ManifestDigestMismatch(
                "MANIFEST_DIGEST_MISMATCH",
                f"tool {name!r} of server {server!r} changed since manifest {signed.id!r} was signed: "
                + " and ".join(changed),
                server,
                name,
            )
        return self.verified(signed)


def read_trust_file(path: Path) -> tuple[list[VerifyKey], list[str]]:
    """The trust file: {"keys": ["ed25519:<base64>", ...], "revoked": ["<manifest id>", ...]}."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ManifestFormatError("MANIFEST_TRUST_INVALID", f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(document, dict) or set(document) - {"keys", "revoked"} or "keys" not in document:
        raise ManifestFormatError("MANIFEST_TRUST_INVALID", f'{path}: expected {{"keys": [...], "revoked": [...]}}')
    keys, revoked = document["keys"], document.get("revoked", [])
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise ManifestFormatError("MANIFEST_TRUST_INVALID", f"{path}: keys must be a non-empty list of strings")
    if not isinstance(revoked, list) or not all(isinstance(r, str) for r in revoked):
        raise ManifestFormatError("MANIFEST_TRUST_INVALID", f"{path}: revoked must be a list of manifest ids")
    return [decode_public_key(k) for k in keys], list(revoked)


def load_trust_store(trust_file: Path, manifest_dir: Path) -> TrustStore:
    """Keys and revocations from `trust_file`, manifests from every `*.json` in `manifest_dir`. A malformed file is
    a ConfigError: a manifest that parses but does not verify is refused per tool, at call time."""
    try:
        keys, revoked = read_trust_file(trust_file)
    except ManifestFormatError as exc:
        raise ConfigError("CORESDK_MANIFEST_KEYS", exc.message) from None
    if not manifest_dir.is_dir():
        raise ConfigError("CORESDK_MANIFEST_DIR", f"not a directory: {manifest_dir}")
    try:
        manifests = [read_signed(p) for p in sorted(manifest_dir.glob("*.json"))]
        return TrustStore(keys, revoked, manifests)
    except ManifestFormatError as exc:
        raise ConfigError("CORESDK_MANIFEST_DIR", exc.message) from None
