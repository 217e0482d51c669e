"""Containers and Kubernetes manifests, checked without a container engine or a cluster: hadolint on the
Dockerfiles, the files they copy and the commands they run exist and work, the manifests validate against the
Kubernetes schemas and keep every security-relevant field."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest

from coresdk.config.controlplane import load_controlplane_config
from coresdk.config.gateway import load_gateway_config
from coresdk.config.sidecar import load_sidecar_config
from coresdk.doctor.model import Context, Status
from coresdk.doctor.secrets import no_hardcoded_secrets
from coresdk.errors import ConfigError
from tests.support.manifests import container_env, coresdk_containers, manifests, mounted_volumes, workloads
from tests.support.processes import ROOT

DOCKERFILES = [ROOT / "Dockerfile.sidecar", ROOT / "Dockerfile.gateway"]
K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.30"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage(path: Path) -> list[tuple[str, str]]:
    steps = instructions(path)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_shape(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    args = dict(s for s in steps if s[0] == "ARG")
    assert re.fullmatch(r"PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+", args["ARG"]), "pinned base image version"
    froms = [rest for word, rest in steps if word == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build"), "multi-stage build"
    final = final_stage(dockerfile)
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "runs as a non-root user"
    runs = " ".join(rest for word, rest in final if word == "RUN")
    assert not re.search(r"\b(gcc|g\+\+|build-essential|make|apt-get install)\b", runs), "no compilers in the image"
    assert any(word == "HEALTHCHECK" for word, _ in final)
    for word, rest in steps:
        if word == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), f"{dockerfile.name} copies a missing {source}"


def test_exposed_ports_are_only_the_needed_ones() -> None:
    def exposed(path: Path) -> set[str]:
        return {p for word, rest in final_stage(path) if word == "EXPOSE" for p in rest.split()}

    assert exposed(ROOT / "Dockerfile.sidecar") == {"9091"}  # gRPC stays on loopback: never published
    assert exposed(ROOT / "Dockerfile.gateway") == {"8000", "8080"}


def test_entrypoints_run() -> None:
    """What the images start: the console script and its subcommands exist and parse their arguments."""
    for command in (["sidecar"], ["gateway"], ["controlplane"], ["doctor"]):
        result = subprocess.run(
            [sys.executable, "-m", "coresdk.cli", *command, "--help"], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, (command, result.stderr)
    scripts = (ROOT / "pyproject.toml").read_text()
    assert 'coresdk = "coresdk.cli:main"' in scripts


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/readyz" else 503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def health_server() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_the_healthcheck_command_the_images_use(health_server: int) -> None:
    def probe(url: str) -> int:
        return subprocess.run(
            [sys.executable, "-m", "coresdk.healthcheck", url], capture_output=True, check=False
        ).returncode

    assert probe(f"http://127.0.0.1:{health_server}/readyz") == 0
    assert probe(f"http://127.0.0.1:{health_server}/other") == 1
    assert probe("http://127.0.0.1:1/readyz") == 1
    assert probe("http://example.com/readyz") == 2  # probes stay on loopback
    for dockerfile in DOCKERFILES:
        [health] = [rest for word, rest in final_stage(dockerfile) if word == "HEALTHCHECK"]
        assert '"coresdk.healthcheck"' in health


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    docs = [d for d in manifests() if d["kind"] != "Kustomization"]
    assert {d["kind"] for d in docs} >= {"Deployment", "StatefulSet", "Service", "NetworkPolicy", "Secret"}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_every_container_is_hardened() -> None:
    for workload in workloads():
        pod = workload["spec"]["template"]["spec"]
        name = workload["metadata"]["name"]
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"), name
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0, name
        assert pod.get("automountServiceAccountToken") is False, name
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, (name, c["name"])
            assert sc["allowPrivilegeEscalation"] is False, (name, c["name"])
            assert sc["runAsNonRoot"] is True, (name, c["name"])
            assert sc["capabilities"]["drop"] == ["ALL"], (name, c["name"])
            assert not sc.get("privileged"), (name, c["name"])
            assert "limits" in c["resources"], (name, c["name"])
            for env in c.get("env", []):
                if (
                    re.search(r"TOKEN|SECRET(?!_PATHS)|PASSWORD|DATABASE_URL", env["name"])
                    and "_FILE" not in env["name"]
                ):
                    assert "valueFrom" in env and "value" not in env, (name, env["name"])


def test_sidecars_stay_on_loopback_and_are_probed_from_inside_the_pod() -> None:
    sidecars = [
        (w["metadata"]["name"], c)
        for w in workloads()
        for c in w["spec"]["template"]["spec"]["containers"]
        if c["name"] == "coresdk-sidecar"
    ]
    assert sidecars, "the application pod has its sidecar"
    for name, c in sidecars:
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["CORESDK_SIDECAR_ADDR"] == "[::1]:50051", name
        assert env["CORESDK_HEALTH_ADDR"].startswith("127.0.0.1:"), name
        assert not c.get("ports"), f"{name}: the sidecar declares no container port"
        for probe in ("readinessProbe", "livenessProbe"):
            command = c[probe]["exec"]["command"]
            assert command[:3] == ["python", "-m", "coresdk.healthcheck"] and "127.0.0.1:9091" in command[3]
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert "/var/lib/coresdk" in mounts, f"{name}: the audit journal needs a writable volume"


def test_the_control_plane_is_internal_and_fenced() -> None:
    docs = manifests()
    [service] = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "coresdk-controlplane"]
    assert service["spec"]["type"] == "ClusterIP"
    [policy] = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert policy["spec"]["podSelector"]["matchLabels"] == service["spec"]["selector"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert all("podSelector" in peer and "ipBlock" not in peer for peer in rule["from"])
    [cp] = [w for w in workloads() if w["metadata"]["name"] == "coresdk-controlplane"]
    env = {e["name"] for e in cp["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"DATABASE_URL", "CPOD_ADMIN_TOKEN", "CORESDK_SERVER_SECRET", "CORESDK_AUDIT_SYSLOG_ADDR"} <= env
    for w in workloads():
        for c in w["spec"]["template"]["spec"]["containers"]:
            assert all("hostPort" not in p for p in c.get("ports", []))


def test_shipped_configuration_has_no_hardcoded_secret() -> None:
    paths = [ROOT / "config", K8S, *DOCKERFILES]
    status, detail, _ = no_hardcoded_secrets(Context({}, paths))
    assert status is Status.PASS, detail


def test_the_gateway_decides_in_process_without_a_sidecar() -> None:
    """The gateway runs the engine itself: the engine's settings on its container, its own journal volume and
    credential, readiness on /readyz, and no sidecar container in its pod."""
    [gateway] = [w for w in workloads() if w["metadata"]["name"] == "coresdk-gateway"]
    spec = gateway["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["gateway"]
    [container] = spec["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert {"CORESDK_JWKS_URI", "CORESDK_EXPECTED_ISSUER", "CORESDK_EXPECTED_AUDIENCE", "CORESDK_CP_TOKEN"} <= set(env)
    assert "CORESDK_SIDECAR_ADDR" not in env
    assert env["CORESDK_CP_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "cp-credential"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert any(m["mountPath"] == env["CORESDK_DATA_DIR"]["value"] for m in container["volumeMounts"])


# --- every CoreSDK container's environment through its service's configuration loader (issue 14) ---------------


def _secrets() -> dict[tuple[str, str], str]:
    """A value for every Secret key the manifests reference, shaped as the loaders require."""
    out: dict[tuple[str, str], str] = {}
    for _, c in coresdk_containers():
        for item in c.get("env", []):
            if "valueFrom" in item:
                ref = item["valueFrom"]["secretKeyRef"]
                url = "postgresql://coresdk@postgres.example.com:5432/coresdk"
                out[(ref["name"], ref["key"])] = url if "database-url" in ref["key"] else "v" * 40
    return out


def _loader(c: dict[str, Any]) -> Callable[[Mapping[str, str]], object]:
    if c.get("args") == ["controlplane"]:
        return load_controlplane_config
    return load_gateway_config if "/coresdk/gateway:" in c["image"] else load_sidecar_config


@pytest.mark.parametrize("workload,container", [(w, c["name"]) for w, c in coresdk_containers()])
def test_each_manifest_container_passes_its_configuration_loader(workload: str, container: str, tmp_path: Path) -> None:
    [c] = [c for w, c in coresdk_containers() if (w, c["name"]) == (workload, container)]
    mounted_volumes(tmp_path)
    env = container_env(c, _secrets(), tmp_path)
    _loader(c)(env)  # raises ConfigError naming the variable if the shipped manifest cannot start
    plain = [v for v in env.values() if v.startswith("http://")]
    if plain:  # plain http only because the manifest names the host: without the list the loader refuses
        named = env.get("CORESDK_PLAINTEXT_HOSTS", "")
        assert all(urlsplit(v).hostname in named.split(",") for v in plain), (plain, named)
        without = {k: v for k, v in env.items() if k != "CORESDK_PLAINTEXT_HOSTS"}
        with pytest.raises(ConfigError, match="CORESDK_PLAINTEXT_HOSTS"):
            _loader(c)(without)


def test_no_manifest_uses_the_shared_sidecar_token() -> None:
    """Production refuses the shared token: every workload ships with a credential enrolled for it alone."""
    refs = {
        (w, item["valueFrom"]["secretKeyRef"]["name"], item["valueFrom"]["secretKeyRef"]["key"])
        for w, c in coresdk_containers()
        for item in c.get("env", [])
        if item["name"] in ("CORESDK_CP_TOKEN", "CORESDK_SIDECAR_TOKEN") and "valueFrom" in item
    }
    assert all(key != "sidecar-token" for _, _, key in refs)
    assert not any(name == "CORESDK_SIDECAR_TOKEN" for _, c in coresdk_containers() for name in env_names(c))
    assert len({secret for _, secret, _ in refs}) == len(refs) == 2  # the gateway and the orders pods: one Secret each


def env_names(c: dict[str, Any]) -> list[str]:
    return [item["name"] for item in c.get("env", [])]
