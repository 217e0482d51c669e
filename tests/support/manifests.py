"""Reading deploy/k8s: each container's environment exactly as Kubernetes would give it, with the Secrets the test
supplies, and the files it names found where the pod would have them (its volumes, and what its image copies in)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.support.processes import ROOT

K8S = ROOT / "deploy" / "k8s"
RESOLVER = Path(__file__).parent / "resolver"
IMAGES = {"gateway": ROOT / "Dockerfile.gateway", "sidecar": ROOT / "Dockerfile.sidecar"}


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def workloads() -> list[dict[str, Any]]:
    return [d for d in manifests() if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]


def container(workload: str, name: str) -> dict[str, Any]:
    [found] = [
        c
        for w in workloads()
        if w["metadata"]["name"] == workload
        for c in w["spec"]["template"]["spec"]["containers"]
        if c["name"] == name
    ]
    return found


def coresdk_containers() -> list[tuple[str, dict[str, Any]]]:
    """(workload name, container) for every container that runs a CoreSDK image."""
    return [
        (w["metadata"]["name"], c)
        for w in workloads()
        for c in w["spec"]["template"]["spec"]["containers"]
        if "/coresdk/" in c["image"]
    ]


def image_files(image: str) -> dict[str, Path]:
    """The files an image copies in from this repository (COPY <repo path> <absolute path>)."""
    name = image.rsplit("/", 1)[1].split(":")[0]
    out: dict[str, Path] = {}
    for line in IMAGES[name].read_text().splitlines():
        match = re.fullmatch(r"COPY (?!--)(\S+) (/\S+)", line.strip())
        if match:
            out[match.group(2)] = ROOT / match.group(1)
    return out


def container_env(c: dict[str, Any], secrets: dict[tuple[str, str], str], root: Path) -> dict[str, str]:
    """The container's variables: values as written, secretKeyRef from `secrets` (every one must be supplied), and
    absolute paths moved under `root` for mounted volumes or to the repository file its image copies in."""
    mounts = {m["mountPath"]: root / m["mountPath"].lstrip("/") for m in c.get("volumeMounts", [])}
    files = {**image_files(c["image"]), **mounts}
    env: dict[str, str] = {}
    for item in c.get("env", []):
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            value = secrets[(ref["name"], ref["key"])]
        else:
            value = str(item["value"])
        for prefix in sorted(files, key=len, reverse=True):
            if value == prefix or value.startswith(prefix.rstrip("/") + "/"):
                value = str(files[prefix]) + value[len(prefix) :]
                break
        env[item["name"]] = value
    return env


def mounted_volumes(root: Path) -> None:
    """What the pods' Secret and ConfigMap volumes hold: the signing key, the AppRole secret id, and the gateway's
    MCP trust file and (empty) manifest directory."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from nacl.signing import SigningKey

    from coresdk.mcp.manifest import encode_public_key

    key = root / "etc/coresdk/keys/signing-key.pem"
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    approle = root / "etc/coresdk/approle/secret-id"
    approle.parent.mkdir(parents=True, exist_ok=True)
    approle.write_text("secret-id")
    trust = root / "etc/coresdk/mcp-trust/manifest-trust.json"
    trust.parent.mkdir(parents=True, exist_ok=True)
    trust.write_text(json.dumps({"keys": [encode_public_key(SigningKey.generate().verify_key)], "revoked": []}))
    (root / "etc/coresdk/mcp-manifests").mkdir(parents=True, exist_ok=True)
