"""`coresdk manifest keygen | sign | verify`: the reviewer's side of signed tool manifests.

keygen writes a private key file (mode 0600, never overwritten) and prints the public key for the trust file;
sign pins a tool as its server describes it (a tool object, or a `tools/list` result and --tool); verify checks a
signed manifest against trusted keys and revocations, and, given the tool's current description, its digests.
Exit status: 0 good, 1 refused, 2 unusable input. Messages are one line, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from coresdk.mcp import manifest as m


def add_parser(sub: Any) -> None:
    cmd = sub.add_parser("manifest", help="signed MCP tool manifests: keygen, sign, verify")
    actions = cmd.add_subparsers(dest="manifest_command", required=True)
    keygen = actions.add_parser("keygen", help="new Ed25519 signing key; prints the public key")
    keygen.add_argument("--out", required=True, help="private key file to create (mode 0600, not overwritten)")
    sign = actions.add_parser("sign", help="sign the manifest of one tool")
    sign.add_argument("--key", required=True, help="private key file from keygen")
    sign.add_argument("--server", required=True, help="the upstream's name in the gateway configuration")
    sign.add_argument("--tool-json", required=True, help="a tool object or a tools/list result (file, or - for stdin)")
    sign.add_argument("--tool", default="", help="the tool's name, when --tool-json holds several")
    sign.add_argument("--version", required=True, help="the tool version being approved")
    sign.add_argument("--id", default="", help="manifest id (default: a new random one)")
    sign.add_argument("--tag", action="append", default=[], help="policy tag, e.g. sql (repeatable)")
    sign.add_argument("--sql-argument", default=None, help="argument holding the statement of a sql-tagged tool")
    sign.add_argument("--out", default="", help="write the signed manifest here (default: standard output)")
    verify = actions.add_parser("verify", help="check a signed manifest (and, given the tool, its digests)")
    verify.add_argument("manifest", help="signed manifest file")
    verify.add_argument("--keys", required=True, help="trust file (CORESDK_MANIFEST_KEYS) or one ed25519: key")
    verify.add_argument("--tool-json", default="", help="the tool as its server describes it now")
    verify.add_argument("--tool", default="", help="the tool's name, when --tool-json holds several")


def _read_json(source: str) -> Any:
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    return json.loads(text)


def _pick_tool(document: Any, name: str) -> dict[str, Any]:
    """One tool object ({"name", "description", "inputSchema"}) from a tool or a tools/list result."""
    if isinstance(document, dict) and isinstance(document.get("result"), dict):
        document = document["result"]  # a whole JSON-RPC response
    tools = document.get("tools") if isinstance(document, dict) else None
    candidates = tools if isinstance(tools, list) else [document]
    found = [t for t in candidates if isinstance(t, dict) and (not name or t.get("name") == name)]
    if len(found) != 1 or not isinstance(found[0].get("name"), str) or "inputSchema" not in found[0]:
        raise m.ManifestFormatError(
            "MANIFEST_INVALID",
            f"--tool-json must hold exactly one tool{f' named {name!r}' if name else ''} "
            "with a name and an inputSchema (give --tool to pick one)",
        )
    return found[0]


def _keygen(args: argparse.Namespace) -> int:
    key = SigningKey.generate()
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"coresdk manifest keygen: {args.out} exists; not overwritten", file=sys.stderr)
        return 2
    with os.fdopen(fd, "w") as out:
        out.write(m.encode_private_key(key) + "\n")
    print(m.encode_public_key(key.verify_key))
    return 0


def _sign(args: argparse.Namespace) -> int:
    key = m.decode_private_key(Path(args.key).read_text(encoding="utf-8"))
    tool = _pick_tool(_read_json(args.tool_json), args.tool)
    manifest = m.build_manifest(
        id=args.id or f"mf-{uuid.uuid4()}",
        server=args.server,
        tool=tool["name"],
        version=args.version,
        description=tool.get("description"),
        input_schema=tool["inputSchema"],
        tags=args.tag,
        sql_argument=args.sql_argument,
    )
    text = json.dumps(m.sign_manifest(manifest, key), indent=2, sort_keys=True) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _verify(args: argparse.Namespace) -> int:
    signed = m.read_signed(Path(args.manifest))
    revoked: list[str] = []
    if args.keys.startswith(m.PUBLIC_PREFIX):
        keys = [m.decode_public_key(args.keys)]
    else:
        keys, revoked = m.read_trust_file(Path(args.keys))
    store = m.TrustStore(keys, revoked, [signed])
    try:
        if args.tool_json:
            tool = _pick_tool(_read_json(args.tool_json), args.tool or signed.tool)
            verified = store.verify_tool(signed.server, tool["name"], tool.get("description"), tool["inputSchema"])
            summary: dict[str, Any] = {"valid": True, "digests": "match", **vars(verified)}
        else:
            store.check_signature(signed)
            summary = {"valid": True, "digests": "not checked (no --tool-json)", **signed.manifest}
    except m.ManifestRefused as exc:
        print(f"refused: {exc.reason}: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2, sort_keys=True, default=list))
    return 0


def run(args: argparse.Namespace) -> int:
    handlers = {"keygen": _keygen, "sign": _sign, "verify": _verify}
    try:
        return handlers[args.manifest_command](args)
    except m.ManifestFormatError as exc:
        print(f"coresdk manifest {args.manifest_command}: {exc.message}", file=sys.stderr)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"coresdk manifest {args.manifest_command}: {exc}", file=sys.stderr)
    return 2
