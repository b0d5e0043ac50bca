"""Kernel HTTP basics against the real embedded servers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROBLEM = "application/problem+json"


async def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, await response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith(PROBLEM)
    body = await response.get_json()
    assert body["status"] == status
    assert body["type"].startswith("https://synergyhub.dev/problems/")
    assert body["title"] and body["detail"]
    return body


async def test_healthz_and_headers(client: Any) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abcdef1234567890"})
    assert response.status_code == 200
    assert await response.get_json() == {"status": "ok"}
    assert response.headers["X-Request-ID"] == "abcdef1234567890"
    for header in ("Strict-Transport-Security", "X-Content-Type-Options", "Referrer-Policy",
                   "X-Frame-Options", "Content-Security-Policy"):
        assert header in response.headers
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_request_id_generated_when_missing_or_unsafe(client: Any) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "<script>"})
    assert response.headers["X-Request-ID"] != "<script>"
    assert len(response.headers["X-Request-ID"]) == 32


async def test_readyz_reports_database_and_faulty_plugins(client: Any) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["database"] == "ok"
    assert body["plugins"]["boom"]["state"] == "faulty"
    assert "cannot start" in body["plugins"]["boom"]["faults"][0]["reason"]
    hang_faults = {f["hook"] for f in body["plugins"]["hang"]["faults"]}
    assert {"startup", "register_models"} <= hang_faults
    assert all(f["reason"] == "timed out" for f in body["plugins"]["hang"]["faults"])
    assert body["plugins"]["wecomply"]["state"] == "ok"


async def test_unknown_route_is_problem_404(client: Any) -> None:
    await _problem(await client.get("/no/such/route"), 404)


async def test_wrong_method_is_problem_405(client: Any) -> None:
    body = await _problem(await client.delete("/healthz"), 405)
    assert "method" in body["detail"].lower()


async def test_body_over_limit_is_problem_413(client: Any, synergyhub_settings: Any) -> None:
    big = b"x" * (synergyhub_settings.max_body_bytes + 10)
    response = await client.post("/api/v1/solutions", data=big,
                                 headers={"Content-Type": "application/json"})
    await _problem(response, 413)


async def test_missing_token_is_problem_401(client: Any) -> None:
    body = await _problem(await client.get("/api/v1/me"), 401)
    assert "Bearer" in body["detail"]


async def test_garbage_token_is_problem_401(client: Any) -> None:
    await _problem(await client.get("/api/v1/me", headers={"Authorization": "Bearer nope"}), 401)


async def test_route_that_raises_is_500_without_exception_text(
    client: Any, personas: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = personas["SOLUTION_ADMIN"]
    enabled = await client.put(
        f"/api/v1/solutions/{personas.home_solution}/plugins/boom",
        json={"enabled": True}, headers=admin.headers())
    assert enabled.status_code == 200, await enabled.get_data(as_text=True)
    response = await client.get(f"/api/v1/accounts/{personas.home_account}/boom/explode",
                                headers=personas["MEMBER"].headers())
    body = await _problem(response, 500)
    text = json.dumps(body)
    assert "hunter2" not in text and "RuntimeError" not in text and "Traceback" not in text
    assert body["request_id"] == response.headers["X-Request-ID"]


async def test_plugin_routes_404_when_solution_does_not_enable_plugin(
    client: Any, personas: Any
) -> None:
    other_account = personas.tenants[1].accounts[0]  # Solution 1 enables only studio
    admin = personas[f"ADMIN:{other_account}"]
    assert (await client.get(f"/api/v1/accounts/{other_account}/studio/",
                             headers=admin.headers())).status_code == 200
    await _problem(await client.get(f"/api/v1/accounts/{other_account}/wecomply/",
                                    headers=admin.headers()), 404)
    # Enabled in the home Solution.
    ok = await client.get(f"/api/v1/accounts/{personas.home_account}/wecomply/",
                          headers=personas["MEMBER"].headers())
    assert ok.status_code == 200


async def test_openapi_is_valid_and_has_no_secrets(client: Any, synergyhub_settings: Any) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec = await response.get_json()
    validate(spec)
    assert "/api/v1/accounts/{account_id}/documents" in spec["paths"]
    text = json.dumps(spec)
    assert synergyhub_settings.secret_key.get_secret_value() not in text
    assert synergyhub_settings.mongodb_uri.get_secret_value() not in text


async def test_docs_page_uses_local_assets_only(client: Any) -> None:
    response = await client.get("/docs")
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "http://" not in html and "https://" not in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    asset = await client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert asset.status_code == 200


async def test_cors_only_for_configured_origins(client: Any) -> None:
    response = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
