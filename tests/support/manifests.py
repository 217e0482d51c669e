"""Reading deploy/k8s: each container's environment exactly as Kubernetes would give it, with the Secrets the test
supplies, and the files it names found where the pod would have them (its volumes, and what its image copies in)."""

from __future__ import annotations

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
