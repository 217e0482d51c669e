"""The committed stubs in coresdk/v1 must be what scripts/gen-proto produces from proto/ today."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# protoc stamps its own version into the output; a patch release of grpcio-tools is not staleness.
_VERSION_LINES = re.compile(
    r"^# Protobuf Python Version: .*$|^_runtime_version\.ValidateProtobufRuntimeVersion\([^)]*\)$|"
    r"^GRPC_GENERATED_VERSION = .*$",
    re.MULTILINE,
)


def _normalise(text: str) -> str:
    return _VERSION_LINES.sub("<version>", text)


def test_committed_stubs_are_current(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_proto.py"), str(tmp_path)], check=True)
    fresh = {p.name: p for p in (tmp_path / "coresdk" / "v1").glob("*_pb2*.py*")}
    committed = {p.name: p for p in (ROOT / "coresdk" / "v1").glob("*_pb2*.py*")}
    assert sorted(fresh) == sorted(committed), "a proto was added or removed: run scripts/gen-proto"
    stale = [n for n in fresh if _normalise(fresh[n].read_text()) != _normalise(committed[n].read_text())]
    assert not stale, f"stale generated stubs {stale}: run scripts/gen-proto and commit"


def test_every_proto_declares_the_coresdk_v1_package() -> None:
    for proto in (ROOT / "proto" / "coresdk" / "v1").glob("*.proto"):
        assert "\npackage coresdk.v1;\n" in proto.read_text(), proto.name
