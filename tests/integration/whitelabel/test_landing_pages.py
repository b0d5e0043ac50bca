"""Landing pages over HTTP: drafts, publishing, versions, rollback, previews, roles."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from core.whitelabel.service import WhiteLabelService
from tests.integration.whitelabel.conftest import LOOKUP_TTL, WhiteLabelApp
from tests.integration.whitelabel.support import (
    HERO,
    new_account,
    publish_page,
    without_nonce,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _url(account_id: str, tail: str = "") -> str:
    return f"/api/v1/accounts/{account_id}/landing-page{tail}"


async def test_draft_is_not_public_until_published(client: Any, personas: Any) -> None:
    account, slug, sol = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    public = f"/t/{sol}/{slug}"

    missing = await client.get(public)
    assert missing.status_code == 404

    draft = [HERO, {"type": "rich_text", "html": "<p>Draft only <b>v1</b></p>"}]
    saved = await client.put(_url(account), json={"sections": draft}, headers=admin)
    assert saved.status_code == 200, await saved.get_data(as_text=True)
    assert (await saved.get_json())["revision"] == 1
    unpublished = await client.get(public)
    assert unpublished.status_code == 404
    assert await unpublished.get_data() == await missing.get_data()

    published = await client.post(_url(account, "/publish"), headers=admin)
    assert published.status_code == 201, await published.get_data(as_text=True)
    assert (await published.get_json())["version"] == 1
    page = await client.get(public)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Draft only <b>v1</b>" in await page.get_data(as_text=True)

    # A newer draft stays private until the next publish.
    await client.put(_url(account), json={"sections": [HERO, {
        "type": "rich_text", "html": "<p>Second draft</p>"}]}, headers=admin)
    html = await (await client.get(public)).get_data(as_text=True)
    assert "Draft only" in html and "Second draft" not in html


async def test_rich_text_is_sanitized_when_written(client: Any, personas: Any) -> None:
    account, _, _ = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    dirty = ('<p onclick="alert(1)">Hi <a href="javascript:alert(1)">x</a>'
             '<script>alert(2)</script><a href="https://ok.example">ok</a></p>')
    response = await client.put(_url(account), json={"sections": [
        {"type": "rich_text", "html": dirty}]}, headers=admin)
    assert response.status_code == 200
    stored = (await (await client.get(_url(account), headers=admin)).get_json())["sections"][0]
    assert stored["html"] == ('<p>Hi <a rel="noopener noreferrer">x</a>'
                              '<a href="https://ok.example" rel="noopener noreferrer">ok</a></p>')


async def test_invalid_sections_are_refused(client: Any, personas: Any) -> None:
    account, _, _ = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    for sections in (
        [{"type": "nope"}],
        [{"type": "hero"}],
        [{"type": "hero", "title": "t", "style": "color:red"}],
        [{"type": "image", "url": "javascript:alert(1)", "alt": ""}],
        [{"type": "cta", "title": "t", "button_label": "b", "button_url": "java\tscript:x"}],
        [HERO] * 41,
    ):
        response = await client.put(_url(account), json={"sections": sections}, headers=admin)
        assert response.status_code == 422, (sections, await response.get_data(as_text=True))
        body = await response.get_json()
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert "javascript" not in str(body.get("errors", ""))  # input is never echoed


async def test_plugin_sections_only_where_the_plugin_is_enabled(client: Any, personas: Any
                                                                ) -> None:
    home, slug, sol = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    badge = {"type": "badge", "label": "Certified <b>care</b>"}
    await publish_page(client, home, admin, [HERO, badge])
    html = await (await client.get(f"/t/{sol}/{slug}")).get_data(as_text=True)
    assert '<p class="badge__label">Certified &lt;b&gt;care&lt;/b&gt;</p>' in html

    elsewhere, _, _ = await new_account(client, personas, tenant=1)
    refused = await client.put(_url(elsewhere), json={"sections": [badge]}, headers=admin)
    assert refused.status_code == 422
    assert "badge" not in (await refused.get_json())["section_types"]


async def test_stale_revision_conflicts(client: Any, personas: Any) -> None:
    account, _, _ = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    first = await client.put(_url(account), json={"sections": [HERO], "base_revision": 0},
                             headers=admin)
    assert first.status_code == 200
    again = await client.put(_url(account), json={"sections": [HERO], "base_revision": 0},
                             headers=admin)
    assert again.status_code == 409
    ok = await client.put(_url(account), json={"sections": [HERO], "base_revision": 1},
                          headers=admin)
    assert ok.status_code == 200 and (await ok.get_json())["revision"] == 2
    stale = await client.put(_url(account), json={"sections": [HERO], "base_revision": 1},
                             headers=admin)
    assert stale.status_code == 409
    assert (await stale.get_json())["type"].endswith("/stale-draft")


async def test_rollback_restores_exactly_the_previous_version(client: Any, personas: Any
                                                              ) -> None:
    account, slug, sol = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    public = f"/t/{sol}/{slug}"

    await client.put(f"/api/v1/accounts/{account}/branding",
                     json={"product_name": "First Brand", "primary_color": "#0b3d5c"},
                     headers=admin)
    v1 = await publish_page(client, account, admin, [HERO, {
        "type": "faq", "items": [{"question": "Q1?", "answer": "A1"}]}])
    html_v1 = without_nonce(await (await client.get(public)).get_data(as_text=True))

    await client.put(f"/api/v1/accounts/{account}/branding",
                     json={"product_name": "Second Brand", "primary_color": "#4a1d6b"},
                     headers=admin)
    v2 = await publish_page(client, account, admin, [{"type": "hero", "title": "Changed"}])
    html_v2 = without_nonce(await (await client.get(public)).get_data(as_text=True))
    assert html_v2 != html_v1 and "Second Brand" in html_v2

    response = await client.post(_url(account, "/rollback"), json={"version": v1["version"]},
                                 headers=admin)
    assert response.status_code == 201, await response.get_data(as_text=True)
    v3 = await response.get_json()
    assert v3["version"] == 3 and v3["rolled_back_from"] == 1 and v3["current"]
    for key in ("sections", "theme", "tokens", "branding", "frame_ancestors"):
        assert v3[key] == v1[key], key
    assert without_nonce(await (await client.get(public)).get_data(as_text=True)) == html_v1

    listing = await (await client.get(_url(account, "/versions?limit=2"),
                                      headers=admin)).get_json()
    assert [item["version"] for item in listing["items"]] == [3, 2]
    assert listing["items"][0]["current"] and not listing["items"][1]["current"]
    rest = await (await client.get(_url(account, f"/versions?cursor={listing['next_cursor']}"),
                                   headers=admin)).get_json()
    assert [item["version"] for item in rest["items"]] == [1] and rest["next_cursor"] is None

    one = await (await client.get(_url(account, "/versions/1"), headers=admin)).get_json()
    assert one["sections"] == v1["sections"] and not one["current"]
    for bad in ("99", "x", "-1", "1" * 12):
        assert (await client.get(_url(account, f"/versions/{bad}"),
                                 headers=admin)).status_code == 404, bad
    assert (await client.post(_url(account, "/rollback"), json={"version": 3},
                              headers=admin)).status_code == 409
    assert (await client.post(_url(account, "/rollback"), json={"version": 99},
                              headers=admin)).status_code == 404
    assert v2["version"] == 2

    activity = await (await client.get(f"/api/v1/accounts/{account}/activity?limit=500",
                                       headers=admin)).get_json()
    actions = [event["action"] for event in activity["items"]]
    for action in ("branding.changed", "landing_page.draft_saved", "landing_page.published",
                   "landing_page.rolled_back"):
        assert action in actions, action


async def test_low_contrast_publish_is_refused(client: Any, personas: Any) -> None:
    account, slug, sol = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    # Pale yellow under the theme's white on_primary text: about 1.1:1.
    branding = await client.put(f"/api/v1/accounts/{account}/branding",
                                json={"primary_color": "#fff3a0"}, headers=admin)
    assert branding.status_code == 200
    report = (await branding.get_json())["contrast"]
    assert not report["ok"] and report["failures"][0]["pair"] == "on_primary on primary"

    await client.put(_url(account), json={"sections": [HERO]}, headers=admin)
    refused = await client.post(_url(account, "/publish"), headers=admin)
    assert refused.status_code == 422
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    problem = await refused.get_json()
    assert problem["type"].endswith("/contrast-too-low")
    failure = problem["failures"][0]
    assert failure["pair"] == "on_primary on primary"
    assert failure["foreground_color"] == "#ffffff" and failure["background_color"] == "#fff3a0"
    assert failure["ratio"] < 4.5 and failure["required"] == 4.5
    assert f"{failure['ratio']:.2f}:1" in problem["detail"] and "on_primary on primary" in \
        problem["detail"]
    assert (await client.get(f"/t/{sol}/{slug}")).status_code == 404

    activity = await (await client.get(
        f"/api/v1/accounts/{account}/activity?action=landing_page.publish_refused",
        headers=admin)).get_json()
    assert activity["items"][-1]["details"]["pairs"] == ["on_primary on primary"]

    # Fixing the pair lets the same draft publish.
    await client.put(f"/api/v1/accounts/{account}/branding",
                     json={"primary_color": "#fff3a0", "on_primary_color": "#1a1a1a"},
                     headers=admin)
    assert (await client.post(_url(account, "/publish"), headers=admin)).status_code == 201


async def test_preview_link(client: Any, personas: Any, wl: WhiteLabelApp) -> None:
    account, slug, sol = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    assert (await client.post(_url(account, "/preview-link"), json={},
                              headers=admin)).status_code == 409  # no draft yet
    await client.put(_url(account), json={"sections": [
        {"type": "hero", "title": "Preview me"}]}, headers=admin)
    response = await client.post(_url(account, "/preview-link"), json={"expires_in": 600},
                                 headers=admin)
    assert response.status_code == 201
    link = await response.get_json()
    assert link["url"].startswith("/preview/") and link["expires_in"] == 600

    page = await client.get(link["url"])
    assert page.status_code == 200
    assert "Preview me" in await page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "'nonce-" in page.headers["Content-Security-Policy"]
    # The draft is still not public.
    assert (await client.get(f"/t/{sol}/{slug}")).status_code == 404

    token = link["url"].rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert (await client.get(f"/preview/{tampered}")).status_code == 404
    assert (await client.get("/preview/not-a-token")).status_code == 404
    # Only platform hosts (or the account's own) serve previews.
    assert (await client.get(link["url"], headers={"Host": "evil.example"})).status_code == 404

    service = wl.whitelabel
    real_clock = service.clock
    service.clock = lambda: time.time() + 601
    try:
        expired = await client.get(link["url"])
    finally:
        service.clock = real_clock
    assert expired.status_code == 410
    assert "expired" in (await expired.get_data(as_text=True)).lower()
    assert "Preview me" not in await expired.get_data(as_text=True)

    for seconds in (10, 8 * 24 * 3600):
        bad = await client.post(_url(account, "/preview-link"), json={"expires_in": seconds},
                                headers=admin)
        assert bad.status_code == 422


async def test_only_account_admins_and_above_write(client: Any, personas: Any) -> None:
    account = personas.home_account
    for role in ("MEMBER", "VIEWER", "GROUP_ADMIN"):
        headers = personas[role].headers()
        assert (await client.get(_url(account), headers=headers)).status_code == 200
        for method, tail, body in (
            ("put", "", {"sections": [HERO]}),
            ("post", "/publish", None),
            ("post", "/rollback", {"version": 1}),
            ("post", "/preview-link", {}),
        ):
            response = await getattr(client, method)(_url(account, tail), json=body,
                                                     headers=headers)
            assert response.status_code == 403, (role, tail, response.status_code)
    outsider = personas["OUTSIDER"].headers()
    assert (await client.get(_url(account), headers=outsider)).status_code == 404
    assert (await client.get(_url(account))).status_code == 401

    admin = personas["ACCOUNT_ADMIN"].headers()
    assert (await client.put(_url(account), json={"sections": [HERO]},
                             headers=admin)).status_code == 200
    assert (await client.post(_url(account, "/publish"), headers=admin)).status_code == 201
    sol_admin = personas["SOLUTION_ADMIN"].headers()
    assert (await client.put(_url(account), json={"sections": [HERO]},
                             headers=sol_admin)).status_code == 200


async def test_publish_reaches_other_instances_within_the_ttl(client: Any, personas: Any,
                                                              wl: WhiteLabelApp) -> None:
    """A second instance (own caches, same database) serves the new version after the TTL."""
    account, slug, sol = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    await publish_page(client, account, admin, [{"type": "hero", "title": "Version one"}])

    a = wl.whitelabel
    b = WhiteLabelService(store=a.store, assets=a.assets, audit=a.audit, plugins=a.plugins,
                          themes=a.themes,
                          secret_key="other-instance-key-0123456789abcdef",
                          platform_hosts=["localhost"], lookup_ttl=LOOKUP_TTL)

    async def served_by_b() -> str:
        tenant = await b.tenant_for_request("localhost", sol, slug)
        assert tenant is not None and tenant.account.id == account  # B resolves the same tenant
        page = await b.public_page(tenant)
        assert page is not None and page.version >= 1  # B serves a published version
        return page.body("n" * 22).decode()

    assert "Version one" in await served_by_b()
    await publish_page(client, account, admin, [{"type": "hero", "title": "Version two"}])
    # Instance A (which published) serves the new version at once.
    assert "Version two" in await (await client.get(f"/t/{sol}/{slug}")).get_data(as_text=True)
    # B may still serve its cached version, but only until its pointer expires.
    await asyncio.sleep(LOOKUP_TTL + 0.05)
    assert "Version two" in await served_by_b()


async def test_the_solution_picks_the_theme(client: Any, personas: Any) -> None:
    superadmin = personas["SUPERADMIN"].headers()
    slug = f"themed-{uuid.uuid4().hex[:6]}"
    solution = await (await client.post("/api/v1/solutions", json={
        "slug": slug, "name": "Themed", "theme": "corporate"}, headers=superadmin)).get_json()
    account = await (await client.post(f"/api/v1/solutions/{solution['id']}/accounts", json={
        "slug": "acme", "name": "Acme"}, headers=superadmin)).get_json()
    await publish_page(client, account["id"], superadmin, [HERO])
    html = await (await client.get(f"/t/{slug}/acme")).get_data(as_text=True)
    assert '<body class="theme-corporate">' in html
    assert "/static/themes/corporate/theme.css" in html

    await client.patch(f"/api/v1/solutions/{solution['id']}", json={"theme": "retro"},
                       headers=superadmin)
    refused = await client.post(_url(account["id"], "/publish"), headers=superadmin)
    assert refused.status_code == 422
    problem = await refused.get_json()
    assert problem["type"].endswith("/unknown-theme") and "clinical" in problem["detail"]
    # What was published stays as it was published.
    assert '<body class="theme-corporate">' in await (
        await client.get(f"/t/{slug}/acme")).get_data(as_text=True)
