"""Custom authorization rules in Rego: in-process (regorus, the Rust engine) or a remote OPA server's data API.

Rego only restricts: it is consulted after the built-in checks (roles, scopes, tenant, ownership) allowed a request,
so a policy can refuse more but never grant what a token's scopes and roles do not. The queried document must be an
object with a boolean `allow` and optionally a `reason` (an UPPER_SNAKE name). Anything else — undefined document,
non-boolean `allow`, an evaluation error — is a deny. An OPA server that cannot answer in time is an outage
(`Unavailable`), which the gateway turns into 503: never a pass-through.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import regorus

from coresdk.config.engine import PolicySettings
from coresdk.errors import ConfigError, Unavailable

log = logging.getLogger("coresdk.policy")
POLICY_UNAVAILABLE = "POLICY_ENGINE_UNAVAILABLE"
_REASON = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


@dataclass(frozen=True)
class RegoOutcome:
    allowed: bool
    reason: str  # POLICY_DENIED or the policy's own reason when denied; "" when allowed


def interpret(document: Any) -> RegoOutcome:
    """Turn the policy's answer into a decision; every shape we did not ask for is a deny."""
    if not isinstance(document, dict):
        return RegoOutcome(False, "POLICY_UNDEFINED")
    allow = document.get("allow")
    if allow is not True:
        if allow is not False:
            return RegoOutcome(False, "POLICY_UNDEFINED")
        reason = document.get("reason")
        return RegoOutcome(False, reason if isinstance(reason, str) and _REASON.fullmatch(reason) else "POLICY_DENIED")
    return RegoOutcome(True, "")


def _engine_message(exc: BaseException) -> str:
    """regorus errors carry a Rust backtrace; operators need the first lines (file, position, message)."""
    text = str(exc).split("Stack backtrace:")[0].strip()
    return " ".join(line.strip() for line in text.splitlines() if line.strip())[:500]


class RegoEvaluator(Protocol):
    name: str

    async def evaluate(self, document: dict[str, Any]) -> RegoOutcome: ...

    async def close(self) -> None: ...


class LocalRego:
    """regorus in this process. Evaluation takes microseconds, so it runs on the event loop without a thread hop."""

    def __init__(self, files: tuple[Path, ...], query: str, data_file: Path | None = None) -> None:
        self.name = "rego:" + query
        self._rule = "data." + query.replace("/", ".")
        self._engine = regorus.Engine()
        self._allow_rule: str | None = None
        self._reason_rule: str | None = None
        problem = self._load(files, data_file)
        if problem is not None:
            # A regorus engine may only be dropped on the thread that made it: drop it here, not with whatever
            # thread's garbage collection later frees the traceback of this error.
            del self._engine
            raise problem

    def _load(self, files: tuple[Path, ...], data_file: Path | None) -> ConfigError | None:
        for path in files:
            try:
                self._engine.add_policy(str(path), path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as exc:
                return ConfigError("CORESDK_POLICY_FILE", f"cannot read {path}: {exc}")
            except Exception as exc:  # regorus raises RuntimeError with the parser's message
                return ConfigError("CORESDK_POLICY_FILE", f"{path} does not compile: {_engine_message(exc)}")
        if data_file is not None:
            try:
                self._engine.add_data_json(data_file.read_text(encoding="utf-8"))
            except Exception as exc:
                return ConfigError("CORESDK_POLICY_DATA", f"{data_file} is not a JSON object: {_engine_message(exc)}")
        packages = set(self._engine.get_packages())
        parent = self._rule.rsplit(".", 1)[0]
        if self._rule not in packages and parent not in packages:
            return ConfigError(
                "CORESDK_POLICY_QUERY",
                f"no loaded policy defines {self._rule} (packages: {', '.join(sorted(packages))})",
            )
        # When the query names a package, evaluate its `allow` (and, on a deny, `reason`) rules directly: a few
        # microseconds instead of building the whole package document.
        if self._rule in packages:
            if not self._is_rule(self._rule + ".allow"):
                return ConfigError("CORESDK_POLICY_QUERY", f"package {self._rule} defines no allow rule")
            self._allow_rule = self._rule + ".allow"
            self._reason_rule = self._rule + ".reason" if self._is_rule(self._rule + ".reason") else None
        return None

    def _is_rule(self, path: str) -> bool:
        try:
            self._engine.set_input_json("{}")
            self._engine.eval_rule(path)
        except Exception as exc:
            return "not a valid rule path" not in str(exc)
        return True

    async def evaluate(self, document: dict[str, Any]) -> RegoOutcome:
        try:
            self._engine.set_input_json(json.dumps(document))
            if self._allow_rule is not None:
                allow = self._engine.eval_rule(self._allow_rule)
                if allow is True:
                    return RegoOutcome(True, "")
                reason = self._engine.eval_rule(self._reason_rule) if self._reason_rule else None
                return interpret({"allow": allow, "reason": reason})
            result = self._engine.eval_query(self._rule)
        except Exception as exc:
            log.warning("rego evaluation error: %s", _engine_message(exc))
            return RegoOutcome(False, "POLICY_ERROR")
        rows = result.get("result") or []
        if not rows:
            return RegoOutcome(False, "POLICY_UNDEFINED")
        return interpret(rows[0]["expressions"][0]["value"])

    async def close(self) -> None:
        return None


class RemoteOpa:
    """OPA's data API: POST {OPA_URL}/v1/data/{query} with {"input": ...}. No answer in time is an outage."""

    def __init__(self, url: str, query: str, timeout_seconds: float) -> None:
        self.name = "opa:" + query
        self._url = f"{url}/v1/data/{query}"
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def evaluate(self, document: dict[str, Any]) -> RegoOutcome:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self._url, json={"input": document}) as resp:
                if resp.status >= 500:
                    raise Unavailable(POLICY_UNAVAILABLE, f"the policy engine answered {resp.status}")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("policy engine unreachable: %s", type(exc).__name__)
            raise Unavailable(POLICY_UNAVAILABLE, "the policy engine did not answer") from None
        if resp.status != 200 or not isinstance(body, dict):
            log.warning("policy engine refused the query: status=%s", resp.status)
            return RegoOutcome(False, "POLICY_ERROR")
        return interpret(body.get("result"))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def load_evaluator(settings: PolicySettings | None) -> RegoEvaluator | None:
    """Compile in-process policies at start-up, so a broken file stops the sidecar instead of denying everything."""
    if settings is None:
        return None
    if settings.opa_url is not None:
        return RemoteOpa(settings.opa_url, settings.query, settings.timeout_seconds)
    return LocalRego(settings.files, settings.query, settings.data_file)
