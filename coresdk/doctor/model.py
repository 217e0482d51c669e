"""What a check is and what it answers. Checks never raise: an exception inside one is that check's FAIL."""

from __future__ import annotations

import enum
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Status(enum.StrEnum):
    PASS = "PASS"  # noqa: S105 - a status, not a password
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Result:
    id: str
    title: str
    status: Status
    detail: str
    remediation: str = ""


@dataclass
class Context:
    """The deployment as the doctor sees it: its environment (merged env files) and what it can reach."""

    env: Mapping[str, str]
    scan_paths: list[Path] = field(default_factory=list)
    timeout: float = 5.0

    def get(self, name: str, default: str = "") -> str:
        return (self.env.get(name) or default).strip()

    def http(
        self, method: str, url: str, headers: Mapping[str, str] | None = None, body: bytes | None = None
    ) -> tuple[int, bytes, Mapping[str, str]]:
        request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))  # noqa: S310
        context = ssl.create_default_context(cafile=self.get("CORESDK_JWKS_CA_FILE") or None)
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect())
        try:
            with opener.open(request, timeout=self.timeout) as resp:
                return int(resp.status), bytes(resp.read(1 << 20)), dict(resp.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read(1 << 20), dict(err.headers)

    def json(self, url: str, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
        status, body, _ = self.http("GET", url, headers)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None

    @property
    def cp_url(self) -> str:
        explicit = self.get("CORESDK_CP_URL")
        if explicit:
            return explicit.rstrip("/")
        host, _, port = self.get("CORESDK_CP_ADDR", "127.0.0.1:8080").rpartition(":")
        host = "127.0.0.1" if host in ("0.0.0.0", "", "[::]") else host
        return f"http://{host}:{port}"

    def admin_token(self) -> str:
        """CPOD_ADMIN_TOKEN, or the content of CPOD_ADMIN_TOKEN_FILE (so env files need not hold the secret)."""
        token = self.get("CPOD_ADMIN_TOKEN")
        path = self.get("CPOD_ADMIN_TOKEN_FILE")
        if not token and path:
            token = Path(path).read_text().strip()
        return token

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token()}"}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


CheckFn = Callable[[Context], Result]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    run: Callable[[Context], tuple[Status, str, str]]  # (status, detail, remediation)

    def __call__(self, ctx: Context) -> Result:
        try:
            status, detail, remediation = self.run(ctx)
        except Exception as exc:  # a check that cannot run cannot vouch for anything
            status, detail, remediation = Status.FAIL, f"check could not run: {type(exc).__name__}: {exc}", ""
        return Result(self.id, self.title, status, detail, remediation)


def ok(detail: str) -> tuple[Status, str, str]:
    return Status.PASS, detail, ""


def fail(detail: str, remediation: str) -> tuple[Status, str, str]:
    return Status.FAIL, detail, remediation


def warn(detail: str, remediation: str) -> tuple[Status, str, str]:
    return Status.WARN, detail, remediation
