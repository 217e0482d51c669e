"""A real nginx (Debian's) in front of CoreSDK's decision endpoint, configured from config/nginx/ as shipped.

The shipped example is used as is, except for the addresses: its upstream servers and listen address are pointed at
this test's processes. Skipped with a visible reason where nginx is missing, except in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.support.ports import free_port
from tests.support.processes import ROOT

EXAMPLE = ROOT / "config" / "nginx"
NGINX = os.environ.get("CORESDK_TEST_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"


def require_nginx() -> None:
    if not os.path.exists(NGINX):
        if os.environ.get("CI") == "true" or os.environ.get("CORESDK_TEST_REQUIRE_TOOLS") == "1":
            pytest.fail(f"nginx missing in CI ({NGINX}; apt install nginx)")
        pytest.skip("no nginx here (apt install nginx)")


def configure(authz_port: int, app_port: int, cp_port: int, listen_port: int) -> str:
    """The shipped server configuration with this test's addresses."""
    text = (EXAMPLE / "coresdk.conf").read_text()
    replacements = {
        r"server 127\.0\.0\.1:8001;": f"server 127.0.0.1:{authz_port};",
        r"server 127\.0\.0\.1:9000;": f"server 127.0.0.1:{app_port};",
        r"server 127\.0\.0\.1:8080;": f"server 127.0.0.1:{cp_port};",
        r"listen 127\.0\.0\.1:8000;": f"listen 127.0.0.1:{listen_port};",
    }
    for pattern, value in replacements.items():
        text, n = re.subn(pattern, value, text)
        assert n == 1, f"the example no longer has {pattern}"
    return text


class NginxProcess:
    def __init__(self, authz_port: int, app_port: int, cp_port: int) -> None:
        require_nginx()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = Path(tempfile.mkdtemp(prefix="coresdk-nginx-"))
        (self.prefix / "logs").mkdir()
        shutil.copy(EXAMPLE / "coresdk_cp_headers", self.prefix / "coresdk_cp_headers")
        (self.prefix / "coresdk.conf").write_text(configure(authz_port, app_port, cp_port, self.port))
        user = "user root;\n" if os.geteuid() == 0 else ""
        (self.prefix / "nginx.conf").write_text(
            f"""{user}worker_processes 1;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {self.prefix}/body;
    proxy_temp_path {self.prefix}/proxy;
    fastcgi_temp_path {self.prefix}/fastcgi;
    uwsgi_temp_path {self.prefix}/uwsgi;
    scgi_temp_path {self.prefix}/scgi;
    include {self.prefix}/coresdk.conf;
}}
"""
        )
        check = subprocess.run(
            [NGINX, "-t", "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/.well-known/oauth-authorization-server", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
            if self.proc.poll() is not None:
                break
        raise RuntimeError(f"nginx did not start: {self.errors()}")

    def errors(self) -> str:
        path = self.prefix / "logs" / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.prefix, ignore_errors=True)
