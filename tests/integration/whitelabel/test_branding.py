"""Branding over HTTP: validation, provenance, Solution locks, roles, audit."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.whitelabel.support import new_account

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _url(account_id: str) -> str:
    return f"/api/v1/accounts/{account_id}/branding"


async def test_defaults_come_from_the_theme_with_provenance(client: Any, personas: Any) -> None:
    account, _, _ = await new_account(client, personas)
    response = await client.get(_url(account), headers=personas["SUPERADMIN"].headers())
    assert response.status_code == 200
    body = await response.get_json()
    assert body["values"]["product_name"] == {"value": None, "source": "platform",
                                              "source_id": "platform", "locked": False}
    assert body["effective"]["product_name"].startswith("Tenant wl-")
    assert body["theme"]["name"] == "clinical"
    assert body["tokens"]["colors"]["primary"] == "#0b5d7a"
    assert body["contrast"] == {"ok": True, "failures": []}
    assert body["overrides"] == {} and body["locked"] == []
    assert "humanist" in body["fonts"]


async def test_put_replaces_the_accounts_branding(client: Any, personas: Any) -> None:
    account, _, _ = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    response = await client.put(_url(account), json={
        "product_name": "Northside Care", "primary_color": "RGB(10, 20, 30)",
        "logo_url": "/static/plugins/wlprobe/logo.png", "font": "geometric",
        "frame_ancestors": ["self", "https://partner.example:8443"],
    }, headers=admin)
    assert response.status_code == 200, await response.get_data(as_text=True)
    body = await response.get_json()
    assert body["overrides"]["primary_color"] == "#0a141e"  # normalised
    assert body["values"]["primary_color"]["source"] == "account"
    assert body["effective"]["logo_url"] == "/static/plugins/wlprobe/logo.png"
    assert body["tokens"]["typography"]["font_family"] == "geometric"
    assert body["tokens"]["typography"]["heading_font_family"] == "geometric"
    assert body["frame_ancestors"] == ["'self'", "https://partner.example:8443"]

    # PUT replaces: keys left out inherit again.
    response = await client.put(_url(account), json={"product_name": "Renamed"}, headers=admin)
    body = await response.get_json()
    assert body["overrides"] == {"product_name": "Renamed"}
    assert body["tokens"]["colors"]["primary"] == "#0b5d7a"

    events = await (await client.get(
        f"/api/v1/accounts/{account}/activity?action=branding.changed", headers=admin)).get_json()
    assert [e["details"]["keys"] for e in events["items"]][-1] == ["product_name"]


@pytest.mark.parametrize("values", [
    {"primary_color": "not-a-colour"},
    {"primary_color": "rgba(0, 0, 0, 0.5)"},
    {"primary_color": "red;}</style><script>alert(1)</script>"},
    {"font": "Comic Sans"},
    {"logo_url": "javascript:alert(1)"},
    {"logo_url": "http://cdn.example/logo.png"},
    {"logo_url": "//evil.example/logo.png"},
    {"logo_url": "/etc/passwd"},
    {"logo_url": "/static/../secrets"},
    {"favicon_url": "data:image/png;base64,AAAA"},
    {"frame_ancestors": ["*"]},
    {"frame_ancestors": ["http://partner.example"]},
    {"frame_ancestors": ["https://partner.example/path"]},
    {"lang": "en\"><script>"},
    {"product_name": ""},
    {"unknown_key": 1},
    {"$where": "1"},
])
async def test_invalid_branding_is_refused(client: Any, personas: Any, values: dict[str, Any]
                                           ) -> None:
    response = await client.put(_url(personas.home_account), json=values,
                                headers=personas["ACCOUNT_ADMIN"].headers())
    assert response.status_code == 422, await response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("application/problem+json")


async def test_members_read_but_only_admins_write(client: Any, personas: Any) -> None:
    account = personas.home_account
    for role in ("MEMBER", "VIEWER", "GROUP_ADMIN"):
        headers = personas[role].headers()
        assert (await client.get(_url(account), headers=headers)).status_code == 200
        refused = await client.put(_url(account), json={"product_name": "x"}, headers=headers)
        assert refused.status_code == 403, role
    assert (await client.get(_url(account),
                             headers=personas["OUTSIDER"].headers())).status_code == 404
    assert (await client.put(_url(account), json={"tagline": "Hello"},
                             headers=personas["ACCOUNT_ADMIN"].headers())).status_code == 200


async def test_solution_locks_are_respected(client: Any, personas: Any) -> None:
    tenant = personas.tenants[1]
    account = tenant.accounts[0]
    superadmin = personas["SUPERADMIN"].headers()
    admin = personas[f"ADMIN:{account}"].headers()
    response = await client.put(f"/api/v1/solutions/{tenant.solution_id}/settings/branding",
                                json={"values": {"primary_color": "#123456"},
                                      "locks": ["primary_color"]}, headers=superadmin)
    assert response.status_code == 200, await response.get_data(as_text=True)

    refused = await client.put(_url(account), json={"primary_color": "#654321",
                                                    "tagline": "t"}, headers=admin)
    assert refused.status_code == 403
    assert (await refused.get_json())["locked"] == ["primary_color"]
    ok = await client.put(_url(account), json={"tagline": "t"}, headers=admin)
    body = await ok.get_json()
    assert body["values"]["primary_color"] == {"value": "#123456", "source": "solution",
                                               "source_id": tenant.solution_id, "locked": True}
    assert body["locked"] == ["primary_color"] and body["tokens"]["colors"]["primary"] == "#123456"
    events = await (await client.get(
        f"/api/v1/accounts/{account}/activity?action=branding.locked_write_refused",
        headers=admin)).get_json()
    assert events["items"][-1]["details"]["keys"] == ["primary_color"]

    # The generic settings API validates the same schema.
    bad = await client.put(f"/api/v1/solutions/{tenant.solution_id}/settings/branding",
                           json={"values": {"font": "Papyrus"}}, headers=superadmin)
    assert bad.status_code == 422

