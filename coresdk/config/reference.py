"""Generate the configuration reference from the configuration code itself, so the docs cannot drift: every
variable the loaders read, with its type, default and bounds as written in the `Env` calls.

Run: python -m coresdk.config.reference > docs/config-reference.md (a test fails when the file is stale).
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from coresdk.config.descriptions import DESCRIPTIONS, DOCTOR_VARIABLES

CONFIG_DIR = Path(__file__).resolve().parent
# The engine's settings (engine.py) are read by both of its faces, the sidecar and the gateway.
SERVICES = {
    "sidecar": ("sidecar.py", "engine.py"),
    "control plane": ("controlplane.py",),
    "gateway": ("gateway.py", "engine.py", "manifests.py"),
}
_VARIABLE = re.compile(r"(?:CORESDK|VAULT|CPOD)_[A-Z0-9_]+|DATABASE_URL|OPA_URL")
_KINDS = {
    "text": "text",
    "raw": "text",
    "required": "text, required",
    "integer": "integer",
    "number": "number",
    "flag": "true/false",
    "file": "file path",
    "choice": "one of",
}


@dataclass
class Variable:
    name: str
    services: set[str] = field(default_factory=set)
    kind: str = "text"
    default: str = ""
    bounds: str = ""


def _literal(node: ast.expr, constants: Mapping[str, object]) -> str:
    if isinstance(node, ast.Constant) and node.value is not None:
        return str(node.value).lower() if isinstance(node.value, bool) else str(node.value)
    if isinstance(node, ast.Name) and node.id in constants:
        return str(constants[node.id])
    if isinstance(node, ast.BinOp):
        try:
            return str(eval(compile(ast.Expression(node), "<ref>", "eval"), {}, dict(constants)))  # noqa: S307
        except Exception:
            return ""
    if isinstance(node, ast.Tuple):
        return ", ".join(_literal(e, constants) for e in node.elts)
    return ""


def collect() -> dict[str, Variable]:
    found: dict[str, Variable] = {}
    for service, filename in ((svc, name) for svc, names in SERVICES.items() for name in names):
        tree = ast.parse((CONFIG_DIR / filename).read_text())
        constants = {
            t.id: n.value.value
            for n in tree.body
            if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _VARIABLE.fullmatch(node.value):
                found.setdefault(node.value, Variable(node.value)).services.add(service)
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _KINDS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                continue
            var = found.setdefault(node.args[0].value, Variable(node.args[0].value))
            var.services.add(service)
            var.kind = _KINDS[node.func.attr]
            if node.func.attr in ("text", "integer", "number", "flag", "choice") and len(node.args) > 1:
                var.default = _literal(node.args[1], constants)
            if node.func.attr == "choice" and len(node.args) > 2:
                var.bounds = _literal(node.args[2], constants)
            limits = {k.arg: _literal(k.value, constants) for k in node.keywords if k.arg in ("minimum", "maximum")}
            if limits:
                var.bounds = f"{limits.get('minimum', '')} … {limits.get('maximum', '')}"
    return found


def render() -> str:
    variables = collect()
    lines = [
        "# Configuration reference",
        "",
        "Generated from `coresdk/config/` by `python -m coresdk.config.reference`; do not edit by hand.",
        "Every variable is read once at start-up and validated; a bad value stops the service with an error that",
        "names the variable (exit status 2).",
        "",
    ]
    for service in SERVICES:
        lines += [f"## {service}", "", "| variable | type | default | allowed | meaning |", "|---|---|---|---|---|"]
        for name in sorted(v for v in variables if service in variables[v].services):
            v = variables[name]
            meaning = DESCRIPTIONS.get(name, "**undocumented**").replace("|", "\\|")
            lines.append(f"| `{name}` | {v.kind} | {v.default and f'`{v.default}`'} | {v.bounds} | {meaning} |")
        lines.append("")
    lines += ["## doctor only", "", "| variable | meaning |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in sorted(DOCTOR_VARIABLES.items())]
    return "\n".join(lines) + "\n"


def undocumented() -> list[str]:
    return sorted(set(collect()) - set(DESCRIPTIONS))


if __name__ == "__main__":
    sys.stdout.write(render())
