"""Gateway configuration is validated at start: routes, permissions, overlaps, plans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coresdk.config.gateway import load_gateway_config
from coresdk.errors import ConfigError

ROUTE = {"method": "GET", "path": "/v1/x/{id}", "permission": "x:read"}
# the engine's settings the gateway reads like the sidecar (whom to trust)
TRUST = {
    "CORESDK_JWKS_URI": "https://idp.example/jwks",
    "CORESDK_EXPECTED_ISSUER": "https://idp.example",
    "CORESDK_EXPECTED_AUDIENCE": "api",
}


def load(tmp_path: Path, doc: Any) -> Any:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(doc))
    return load_gateway_config(
        {**TRUST, "CORESDK_UPSTREAM_URL": "http://127.0.0.1:9", "CORESDK_ROUTES_FILE": str(path)}
    )


def test_good_config(tmp_path: Path) -> None:
    cfg = load(
        tmp_path, {"routes": [ROUTE], "plans": {"p": {"requests_per_minute": 1, "burst": 1}}, "default_plan": "p"}
    )
    assert cfg.routes[0].resource == "x" and cfg.entitlements.default_plan == "p"


@pytest.mark.parametrize(
    "doc",
    [
        {"routes": []},
        {"routes": [{**ROUTE, "method": "FETCH"}]},
        {"routes": [{**ROUTE, "permission": "x"}]},
        {"routes": [{**ROUTE, "permission": "X:*"}]},
        {"routes": [{**ROUTE, "path": "/v1/*"}]},
        {"routes": [ROUTE, {**ROUTE, "path": "/v1/x/{other}"}]},
        {"routes": [ROUTE], "plans": {"p": {"requests_per_minute": 0, "burst": 1}}},
        {"routes": [ROUTE], "plans": {"p": {"requests_per_minute": 1, "burst": 1}}, "tenants": {"t": "q"}},
        {"routes": [ROUTE], "plans": {"p": {"requests_per_minute": 1, "burst": 1}}, "default_plan": "q"},
        {"routes": [ROUTE], "quotas": {}},
        {"routes": [{**ROUTE, "permission": "x:export"}]},  # no role grants "export"
        {"routes": [ROUTE], "resources": ["y"]},  # x is not a declared resource
        {"routes": [ROUTE], "resources": "x"},
        {"routes": [ROUTE, {**ROUTE, "path": "/v1/x/export"}]},  # shadowed by /v1/x/{id}
        {"routes": [{**ROUTE, "path": "/v1/{a}/{b}"}, {**ROUTE, "path": "/v1/x/{id}"}]},
    ],
)
def test_bad_config_stops_start_up(tmp_path: Path, doc: Any) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, doc)
    assert info.value.variable == "CORESDK_ROUTES_FILE"


def test_a_literal_route_before_a_pattern_is_reachable(tmp_path: Path) -> None:
    literal = {**ROUTE, "path": "/v1/x/export"}
    cfg = load(tmp_path, {"resources": ["x"], "routes": [literal, ROUTE]})
    assert [r.path for r in cfg.routes] == ["/v1/x/export", "/v1/x/{id}"]


def test_upstream_required() -> None:
    with pytest.raises(ConfigError) as info:
        load_gateway_config({})
    assert info.value.variable == "CORESDK_UPSTREAM_URL"
