"""`coresdk` command line: run a service, run the local development system, mint dev tokens, check a token.

Service modules are imported only by the subcommand that runs them, so the shared package stays free of them.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path


def _http_json(command: str, request: urllib.request.Request, timeout: float) -> dict[str, object] | None:
    """One HTTP call to the control plane; errors become a one-line message (and None), never a traceback."""
    import json
    import urllib.error

    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - the control plane's URL
            raw = resp.read()
            body: dict[str, object] = json.loads(raw) if raw else {}  # 204: nothing to say
            return body
    except urllib.error.HTTPError as err:
        print(f"coresdk {command}: {err.code} {err.read().decode(errors='replace')}", file=sys.stderr)
    except urllib.error.URLError as err:
        print(f"coresdk {command}: control plane unreachable: {err.reason}", file=sys.stderr)
    return None


def _run_service(module: str) -> int:
    main = importlib.import_module(module).main
    return int(main())


def _dev(args: argparse.Namespace) -> int:
    from coresdk.dev import run_dev

    return run_dev(data_dir=args.data_dir, check=args.check)


def _dev_token(args: argparse.Namespace) -> int:
    """Obtain an access token from the running development control plane with the demo client (client_credentials)."""
    import json
    from base64 import b64encode
    from pathlib import Path
    from urllib.parse import urlencode

    demo_file = Path(args.data_dir) / "demo-client.json"
    if not demo_file.is_file():
        print(f"coresdk dev-token: {demo_file} not found (start `coresdk dev` first)", file=sys.stderr)
        return 2
    demo = json.loads(demo_file.read_text())
    basic = b64encode(f"{demo['client_id']}:{demo['client_secret']}".encode()).decode()
    form = {"grant_type": "client_credentials"}
    if args.scope:
        form["scope"] = args.scope
    request = urllib.request.Request(  # noqa: S310 - the local control plane's URL from the demo file
        f"{demo['token_endpoint']}",
        data=urlencode(form).encode(),
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    body = _http_json("dev-token", request, 10)
    if body is None:
        return 1
    print(body["access_token"])
    return 0


def _authenticate(args: argparse.Namespace) -> int:
    import grpc
    from google.protobuf import json_format

    from coresdk.client import error_reason
    from coresdk.v1 import auth_pb2, auth_pb2_grpc

    token = sys.stdin.read().strip() if args.token == "-" else args.token  # noqa: S105 - "-" means stdin

    async def call() -> int:
        async with grpc.aio.insecure_channel(args.addr) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
            try:
                principal = await stub.Authenticate(
                    auth_pb2.AuthenticateRequest(token=token, audience=args.audience), timeout=10
                )
            except grpc.aio.AioRpcError as err:
                reason = error_reason(err)
                print(f"refused: {err.code().name} {reason}: {err.details()}", file=sys.stderr)
                return 1
            print(json_format.MessageToJson(principal, indent=2))
            return 0

    return asyncio.run(call())


def _keys(args: argparse.Namespace) -> int:
    """`coresdk keys rotate|list`: through the control plane's admin API, so the running process switches keys."""
    import json
    from pathlib import Path

    token = os.environ.get("CPOD_ADMIN_TOKEN", "")
    if not token and args.admin_token_file:
        token = Path(args.admin_token_file).read_text().strip()
    if not token:
        print("coresdk keys: set CPOD_ADMIN_TOKEN or --admin-token-file", file=sys.stderr)
        return 2
    method, path = ("POST", "/api/v1/keys/rotate") if args.action == "rotate" else ("GET", "/api/v1/keys")
    request = urllib.request.Request(  # noqa: S310 - operator-supplied control plane URL
        args.cp_url.rstrip("/") + path, method=method, headers={"Authorization": f"Bearer {token}"}
    )
    body = _http_json("keys", request, 30)
    if body is None:
        return 1
    print(json.dumps(body, indent=2))
    return 0


def _sidecar_admin(args: argparse.Namespace) -> int:
    """`coresdk sidecar enrol|list|revoke`: sidecar credentials through the control plane's admin API."""
    import json

    token = os.environ.get("CPOD_ADMIN_TOKEN", "")
    if not token and args.admin_token_file:
        token = Path(args.admin_token_file).read_text().strip()
    if not token:
        print(f"coresdk sidecar {args.sidecar_command}: set CPOD_ADMIN_TOKEN or --admin-token-file", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    base = args.cp_url.rstrip("/") + "/api/v1/sidecars"
    if args.sidecar_command == "enrol":
        if not args.chain and not args.prefix:
            print("coresdk sidecar enrol: give at least one --chain or --prefix", file=sys.stderr)
            return 2
        body = json.dumps({"name": args.name, "chains": args.chain, "prefixes": args.prefix}).encode()
        request = urllib.request.Request(base, data=body, method="POST", headers=headers)  # noqa: S310
    elif args.sidecar_command == "revoke":
        request = urllib.request.Request(f"{base}/{args.id}", method="DELETE", headers=headers)  # noqa: S310
    else:
        request = urllib.request.Request(base, headers=headers)  # noqa: S310 - operator-supplied control plane URL
    result = _http_json(f"sidecar {args.sidecar_command}", request, 30)
    if result is None:
        return 1
    print(json.dumps(result, indent=2) if result else f"sidecar {args.id} revoked")
    if "credential" in result:
        print("the credential is shown only now: give it to the sidecar as CORESDK_CP_TOKEN", file=sys.stderr)
    return 0


def _audit(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from coresdk.audit.checkpoint import CheckpointError
    from coresdk.audit.offline import verify_export

    key = args.pubkey
    if Path(key).is_file():
        key = Path(key).read_text().strip()
    try:
        report = verify_export(Path(args.export), Path(args.checkpoint), key)
    except (OSError, CheckpointError) as exc:
        print(f"coresdk audit verify: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0 if report["valid"] else 1


def _secret(args: argparse.Namespace) -> int:
    """`coresdk secret PATH [KEY]`: resolve a secret through a running sidecar (as a backend would)."""
    import grpc

    from coresdk.client import error_reason
    from coresdk.v1 import secrets_pb2, secrets_pb2_grpc

    async def call() -> int:
        async with grpc.aio.insecure_channel(args.addr) as channel:
            stub = secrets_pb2_grpc.SecretsServiceStub(channel)  # type: ignore[no-untyped-call]
            try:
                reply = await stub.ResolveSecret(
                    secrets_pb2.ResolveSecretRequest(path=args.path, key=args.key, version=args.version), timeout=10
                )
            except grpc.aio.AioRpcError as err:
                print(f"refused: {err.code().name} {error_reason(err)}: {err.details()}", file=sys.stderr)
                return 1
            if args.key:
                print(reply.value)
            else:
                for k in sorted(reply.data):
                    print(f"{k}={reply.data[k]}")
            print(f"(version {reply.version}{', stale' if reply.stale else ''})", file=sys.stderr)
            return 0

    return asyncio.run(call())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coresdk", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    side = sub.add_parser("sidecar", help="run the sidecar (gRPC on loopback; configured by CORESDK_* variables)")
    side_sub = side.add_subparsers(dest="sidecar_command")  # no subcommand: run the sidecar
    enrol = side_sub.add_parser("enrol", help="enrol a sidecar: its own credential, bound to the chains it writes")
    enrol.add_argument("--name", required=True, help="what the sidecar is (shown in listings and audit events)")
    enrol.add_argument("--chain", action="append", default=[], help="a chain id it may write (repeatable)")
    enrol.add_argument("--prefix", action="append", default=[], help="a chain-id prefix it may write (repeatable)")
    side_sub.add_parser("list", help="list enrolled sidecars")
    revoke = side_sub.add_parser("revoke", help="revoke one sidecar's credential")
    revoke.add_argument("id", help="the sidecar id (sc_...)")
    for admin_cmd in (enrol, side_sub.choices["list"], revoke):
        admin_cmd.add_argument("--cp-url", default=os.environ.get("CORESDK_CP_URL", "http://127.0.0.1:8080"))
        admin_cmd.add_argument("--admin-token-file", default="", help="file holding the admin token")
    sub.add_parser("controlplane", help="run the control plane (configured by CORESDK_* variables)")
    sub.add_parser("gateway", help="run the gateway (configured by CORESDK_* variables)")
    dev = sub.add_parser("dev", help="run the whole system locally on embedded defaults (development mode)")
    dev.add_argument("--data-dir", default=os.environ.get("CORESDK_DATA_DIR", ".coresdk-data"))
    dev.add_argument("--check", action="store_true", help="start, run the example end to end, stop; exit status tells")
    tok = sub.add_parser("dev-token", help="get an access token for the demo client from the dev control plane")
    tok.add_argument("--scope", default="", help="space-separated subset of the demo client's scopes")
    tok.add_argument("--data-dir", default=os.environ.get("CORESDK_DATA_DIR", ".coresdk-data"))
    keys = sub.add_parser("keys", help="signing keys of the control plane: rotate (new active key) or list")
    keys.add_argument("action", choices=["rotate", "list"])
    keys.add_argument("--cp-url", default=os.environ.get("CORESDK_CP_URL", "http://127.0.0.1:8080"))
    keys.add_argument("--admin-token-file", default="", help="file holding the admin token (else CPOD_ADMIN_TOKEN)")
    audit = sub.add_parser("audit", help="offline audit verification")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="verify an exported chain against an off-box checkpoint")
    verify.add_argument("--export", required=True, help="JSON Lines export (GET /api/v1/audit/export or the sink)")
    verify.add_argument("--checkpoint", required=True, help="signed checkpoint note kept off the box")
    verify.add_argument("--pubkey", required=True, help="verifier key (name+id+base64) or a file holding it")
    sec = sub.add_parser("secret", help="resolve a secret through a running sidecar")
    sec.add_argument("path")
    sec.add_argument("key", nargs="?", default="")
    sec.add_argument("--version", type=int, default=0)
    sec.add_argument("--addr", default=os.environ.get("CORESDK_SIDECAR_ADDR", "[::1]:50051"))
    auth = sub.add_parser("authenticate", help="validate a token through a running sidecar and print the principal")
    auth.add_argument("token", help="the token, or - to read it from standard input")
    auth.add_argument("--addr", default=os.environ.get("CORESDK_SIDECAR_ADDR", "[::1]:50051"))
    auth.add_argument("--audience", default="")
    doc = sub.add_parser("doctor", help="run the production security checklist against this deployment")
    doc.add_argument("--json", action="store_true", help="machine-readable output for CI")
    doc.add_argument(
        "--env-file", action="append", default=[], help="KEY=VALUE file of the deployment (repeatable; env wins)"
    )
    doc.add_argument(
        "--scan", action="append", default=[], help="configuration file or directory to scan for hardcoded secrets"
    )
    doc.add_argument("--only", action="append", default=[], help="run only this check id (repeatable)")
    doc.add_argument("--timeout", type=float, default=5.0, help="seconds per network probe")
    from coresdk.mcp import manifest_cli

    manifest_cli.add_parser(sub)
    return parser


def _doctor(args: argparse.Namespace) -> int:
    from coresdk.doctor.model import Context
    from coresdk.doctor.report import exit_status as doctor_status
    from coresdk.doctor.report import render_json, render_table, run_checks

    env: dict[str, str] = {}
    for name in args.env_file:
        env.update(read_env_file(Path(name)))
    env.update(os.environ)
    results = run_checks(Context(env, [Path(p) for p in args.scan], args.timeout), args.only)
    if not results:
        print(f"no check matches {', '.join(args.only)}", file=sys.stderr)
        return 2
    (render_json if args.json else render_table)(results)
    return doctor_status(results)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, # comments, optional export and quotes: the subset every env-file consumer agrees on."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.split(" #", 1)[0].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sidecar":
        return _sidecar_admin(args) if args.sidecar_command else _run_service("sidecar.server")
    if args.command == "controlplane":
        return _run_service("controlplane.app")
    if args.command == "gateway":
        return _run_service("gateway.app")
    if args.command == "dev":
        return _dev(args)
    if args.command == "dev-token":
        return _dev_token(args)
    if args.command == "keys":
        return _keys(args)
    if args.command == "audit":
        return _audit(args)
    if args.command == "secret":
        return _secret(args)
    if args.command == "doctor":
        return _doctor(args)
    if args.command == "manifest":
        from coresdk.mcp import manifest_cli

        return manifest_cli.run(args)
    return _authenticate(args)


if __name__ == "__main__":
    sys.exit(main())
