"""Public side: tenant settings for the frontend, page headers, the one 404 page, assets."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from tests.integration.whitelabel.conftest import LOOKUP_TTL, WhiteLabelApp
from tests.integration.whitelabel.support import HERO, PLUGIN, new_account, publish_page

pytestmark = pytest.mark.asyncio(loop_scope="session")

SETTINGS = "/api/v1/public/tenant-settings"


async def test_tenant_settings_by_slugs(client: Any, personas: Any) -> None:
    account, slug, sol = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    await client.put(f"/api/v1/accounts/{account}/branding", json={
        "product_name": "Bright Clinic", "accent_color": "#7a2e0b",
        "logo_url": "/static/plugins/wlprobe/logo.png"}, headers=admin)

    response = await client.get(f"{SETTINGS}?solution={sol}&account={slug}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=60"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    etag = response.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    raw = await response.get_data(as_text=True)
    body = json.loads(raw)
    assert body["solution"]["slug"] == sol and body["account"]["slug"] == slug
    assert body["branding"]["product_name"] == "Bright Clinic"
    assert body["branding"]["logo_url"] == "/static/plugins/wlprobe/logo.png"
    assert body["theme"]["name"] == "clinical"
    assert body["theme"]["tokens"]["colors"]["accent"] == "#7a2e0b"
    assert body["theme"]["css_variables"]["--color-accent"] == "#7a2e0b"
    assert body["theme"]["stylesheet"] == "/static/themes/clinical/theme.css"
    assert body["plugins"] == [PLUGIN]
    assert body["landing_page"] == {"published": False, "path": f"/t/{sol}/{slug}"}
    # Nothing private: no ids, no people, no settings' provenance.
    for private in (account, personas.home_solution, "@", '"uid"', '"token"', "verification",
                    '"locked"', '"source"', '"_id"', '"id"', "email"):
        assert private not in raw, private

    not_modified = await client.get(f"{SETTINGS}?solution={sol}&account={slug}",
                                    headers={"If-None-Match": f'W/{etag}, "other"'})
    assert not_modified.status_code == 304
    assert await not_modified.get_data() == b"" and not_modified.headers["ETag"] == etag

    await publish_page(client, account, admin, [HERO])
    changed = await client.get(f"{SETTINGS}?solution={sol}&account={slug}",
                               headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert (await changed.get_json())["landing_page"]["published"] is True


async def test_tenant_settings_unknown_is_a_404_problem(client: Any, personas: Any) -> None:
    sol = personas.tenants[0].solution_slug
    for query in ("", f"?solution={sol}", f"?solution={sol}&account=nope",
                  "?solution=nope&account=acc0", "?solution=UPPER&account=acc0",
                  f"?solution={sol}&account=acc0%00"):
        response = await client.get(SETTINGS + query)
        assert response.status_code == 404, query
        assert response.headers["Content-Type"].startswith("application/problem+json")
    unknown_host = await client.get(f"{SETTINGS}?solution={sol}&account=acc0",
                                    headers={"Host": "unknown.example"})
    assert unknown_host.status_code == 404
    ok = await client.get(f"{SETTINGS}?solution={sol}&account=acc0",
                          headers={"Host": "platform.test"})
    assert ok.status_code == 200


async def test_low_contrast_colours_are_never_served(client: Any, personas: Any) -> None:
    account, slug, sol = await new_account(client, personas)
    await client.put(f"/api/v1/accounts/{account}/branding",
                     json={"primary_color": "#fff3a0", "font": "monospace"},
                     headers=personas["SUPERADMIN"].headers())
    body = await (await client.get(f"{SETTINGS}?solution={sol}&account={slug}")).get_json()
    assert body["theme"]["tokens"]["colors"]["primary"] == "#0b5d7a"  # the theme's own
    assert body["theme"]["tokens"]["typography"]["font_family"] == "monospace"


def _csp(response: Any) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else ""
            for part in (p.strip() for p in policy.split(";")) if part}


async def test_public_page_headers(client: Any, personas: Any) -> None:
    account, slug, sol = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    await publish_page(client, account, admin, [HERO])
    first = await client.get(f"/t/{sol}/{slug}")
    second = await client.get(f"/t/{sol}/{slug}")
    html = await first.get_data(as_text=True)
    csp = _csp(first)
    nonce = re.search(r"'nonce-([^']+)'", csp["script-src"]).group(1)  # type: ignore[union-attr]
    assert f'<style nonce="{nonce}">' in html and html.count("nonce=") == 1
    assert _csp(second)["script-src"] != csp["script-src"]  # a fresh nonce per response
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == f"'nonce-{nonce}'"
    assert csp["style-src"] == f"'self' 'nonce-{nonce}'"
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in first.headers["Content-Security-Policy"]
    assert first.headers["Strict-Transport-Security"].startswith("max-age=")
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    assert first.headers["Cache-Control"] == "no-cache"
    assert '<link rel="stylesheet" href="/static/themes/clinical/theme.css">' in html

    await client.put(f"/api/v1/accounts/{account}/branding",
                     json={"frame_ancestors": ["self", "https://portal.partner.example"]},
                     headers=admin)
    await client.post(f"/api/v1/accounts/{account}/landing-page/publish", headers=admin)
    embedded = _csp(await client.get(f"/t/{sol}/{slug}"))
    assert embedded["frame-ancestors"] == "'self' https://portal.partner.example"


async def test_every_missing_page_is_the_same_404(client: Any, personas: Any,
                                                  wl: WhiteLabelApp) -> None:
    account, slug, sol = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    await publish_page(client, account, admin, [HERO])
    assert (await client.get(f"/t/{sol}/{slug}")).status_code == 200

    unknown = await client.get(f"/t/{sol}/no-such-account")
    body = await unknown.get_data()
    assert unknown.status_code == 404
    assert unknown.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in unknown.headers["Content-Security-Policy"]
    for path in (f"/t/nope/{slug}", "/t/UPPER/x", f"/t/{sol}/{slug}%0a", "/"):
        response = await client.get(path)
        assert (response.status_code, await response.get_data()) == (404, body), path
    unpublished_account, unpublished_slug, _ = await new_account(client, personas)
    response = await client.get(f"/t/{sol}/{unpublished_slug}")
    assert (response.status_code, await response.get_data()) == (404, body)

    assert (await client.delete(f"/api/v1/accounts/{account}",
                                headers=admin)).status_code == 204
    await asyncio.sleep(LOOKUP_TTL + 0.05)
    archived = await client.get(f"/t/{sol}/{slug}")
    assert (archived.status_code, await archived.get_data()) == (404, body)
    settings = await client.get(f"{SETTINGS}?solution={sol}&account={slug}")
    assert settings.status_code == 404
    del unpublished_account, wl


async def test_theme_and_plugin_assets(client: Any) -> None:
    css = await client.get("/static/themes/corporate/theme.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert "public" in css.headers["Cache-Control"]
    logo = await client.get(f"/static/plugins/{PLUGIN}/logo.png")
    assert logo.status_code == 200 and logo.headers["Content-Type"] == "image/png"
    assert (await logo.get_data()).startswith(b"\x89PNG")
    for path in ("/static/themes/nope/theme.css", "/static/themes/clinical/../theme.json",
                 "/static/themes/clinical/%2e%2e/theme.json", "/static/plugins/nope/logo.png",
                 f"/static/plugins/{PLUGIN}/../templates/sections/badge.html.j2"):
        response = await client.get(path)
        assert response.status_code == 404, path
    # The kernel's own static files are unaffected.
    assert (await client.get("/static/docs-init.js")).status_code == 200


async def test_themes_listing(client: Any, personas: Any) -> None:
    response = await client.get("/api/v1/themes", headers=personas["MEMBER"].headers())
    names = [item["name"] for item in (await response.get_json())["items"]]
    assert names == ["clinical", "corporate"]
    assert (await client.get("/api/v1/themes")).status_code == 401


async def test_solution_branding_from_the_settings_api_shows_at_once(client: Any,
                                                                    personas: Any,
                                                                    wl: WhiteLabelApp) -> None:
    """The instance that takes a Solution-level branding write serves it at once."""
    _, slug, sol = await new_account(client, personas)
    solution = personas.tenants[0].solution_id
    url = f"{SETTINGS}?solution={sol}&account={slug}"
    admin = personas["SUPERADMIN"].headers()
    wl.whitelabel.set_lookup_ttl(60)  # without the eviction this would be stale for 60 s
    try:
        before = await (await client.get(url)).get_json()
        assert before["branding"]["tagline"] != "Care, closer"
        response = await client.put(f"/api/v1/solutions/{solution}/settings/branding",
                                    json={"values": {"tagline": "Care, closer"}},
                                    headers=admin)
        assert response.status_code == 200, await response.get_data(as_text=True)
        after = await (await client.get(url)).get_json()
        assert after["branding"]["tagline"] == "Care, closer"
    finally:
        await client.put(f"/api/v1/solutions/{solution}/settings/branding",
                         json={"values": {"tagline": None}}, headers=admin)
        wl.whitelabel.set_lookup_ttl(LOOKUP_TTL)
