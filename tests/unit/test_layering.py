"""The layering rule, checked on every module's imports: the services (sidecar, controlplane, gateway) import
only `coresdk` among our packages, besides themselves, and `coresdk` imports no service.

Imports are read from the source (ast), so an import inside a function, under TYPE_CHECKING or by
`importlib.import_module("...")` with a literal name counts as much as one at the top of the file.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("coresdk", "sidecar", "controlplane", "gateway", "tests", "bench", "scripts")
MAY_IMPORT = {
    "coresdk": {"coresdk"},
    "sidecar": {"sidecar", "coresdk"},
    "controlplane": {"controlplane", "coresdk"},
    "gateway": {"gateway", "coresdk"},
}


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _literal_import(node: ast.Call) -> bool:
    """importlib.import_module("name") or __import__("name") with a literal name."""
    called = getattr(node.func, "attr", getattr(node.func, "id", ""))
    first = node.args[0] if node.args else None
    return (
        called in ("import_module", "__import__") and isinstance(first, ast.Constant) and isinstance(first.value, str)
    )


def imported_names(root: Path, path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import in the file, relative imports resolved."""
    module = _module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: max(0, len(parts) - (node.level - 1))] if node.level else []
            resolved = ".".join([*base, *([node.module] if node.module else [])])
            if resolved:
                yield node.lineno, resolved
            else:  # `from ... import x` climbing to the top: x itself is the package imported
                for alias in node.names:
                    yield node.lineno, alias.name
        elif isinstance(node, ast.Call) and _literal_import(node):
            yield node.lineno, str(node.args[0].value)  # type: ignore[attr-defined]


def violations(root: Path, rules: dict[str, set[str]] = MAY_IMPORT) -> list[str]:
    found = []
    for layer, allowed in rules.items():
        for path in sorted((root / layer).rglob("*.py")):
            for line, name in imported_names(root, path):
                top = name.split(".")[0]
                if top in OURS and top not in allowed:
                    found.append(
                        f"{path.relative_to(root)}:{line} imports {name} ({layer} may import {sorted(allowed)})"
                    )
    return found


def test_services_import_only_coresdk_and_coresdk_imports_no_service() -> None:
    assert all((ROOT / layer).is_dir() for layer in MAY_IMPORT)
    assert sum(1 for layer in MAY_IMPORT for _ in (ROOT / layer).rglob("*.py")) > 100  # the real tree was read
    assert violations(ROOT) == []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


CLEAN = {
    "coresdk/__init__.py": "",
    "coresdk/util.py": "import json\nfrom . import __name__ as _n\n",
    "sidecar/__init__.py": "",
    "sidecar/a.py": "from coresdk.util import x\nfrom .b import y\nimport grpc\n",
    "sidecar/b.py": "",
    "controlplane/__init__.py": "",
    "controlplane/x/__init__.py": "from ..y import z\n",
    "controlplane/y.py": "import coresdk\n",
    "gateway/__init__.py": "",
}


def test_a_clean_synthetic_tree_passes(tmp_path: Path) -> None:
    _write(tmp_path, CLEAN)
    assert violations(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "text", "culprit"),
    [
        ("gateway/app.py", "from sidecar.server import serve\n", "sidecar.server"),
        ("controlplane/z.py", "def f():\n    import gateway.quota\n", "gateway.quota"),
        ("sidecar/c.py", "if TYPE_CHECKING:\n    from controlplane.store import db\n", "controlplane.store"),
        ("coresdk/leak.py", "from sidecar import journal\n", "sidecar"),
        ("coresdk/sub/__init__.py", "from ... import sidecar\n", "sidecar"),  # relative, climbing out of coresdk
        ("gateway/t.py", "from tests.support import ports\n", "tests.support"),
        ("sidecar/d.py", "import importlib\nimportlib.import_module('gateway.app')\n", "gateway.app"),
    ],
)
def test_a_violation_is_reported_with_file_line_and_module(tmp_path: Path, name: str, text: str, culprit: str) -> None:
    _write(tmp_path, {**CLEAN, name: text})
    [found] = violations(tmp_path)
    assert found.startswith(name) and f"imports {culprit} " in found
