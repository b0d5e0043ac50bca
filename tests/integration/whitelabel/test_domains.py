"""Custom domains: DNS TXT verification through the injected resolver, Host routing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.whitelabel.conftest import WhiteLabelApp
from tests.integration.whitelabel.support import new_account, publish_page

pytestmark = pytest.mark.asyncio(loop_scope="session")

SETTINGS = "/api/v1/public/tenant-settings"


def _domains(account_id: str, tail: str = "") -> str:
    return f"/api/v1/accounts/{account_id}/domains{tail}"


def _fresh_domain(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}.example.org"


async def _published(client: Any, personas: Any, title: str, tenant: int = 0
                     ) -> tuple[str, str, str]:
    account, slug, sol = await new_account(client, personas, tenant=tenant)
    await publish_page(client, account, personas["SUPERADMIN"].headers(),
                       [{"type": "hero", "title": title}])
    return account, slug, sol


async def test_domain_turns_active_after_txt_verification(client: Any, personas: Any,
                                                          wl: WhiteLabelApp) -> None:
    account, slug, sol = await _published(client, personas, "Alpha page")
    admin = personas["SUPERADMIN"].headers()
    domain = _fresh_domain("www.alpha")

    added = await client.post(_domains(account), json={"domain": domain.upper() + "."},
                              headers=admin)
    assert added.status_code == 201, await added.get_data(as_text=True)
    claim = await added.get_json()
    assert claim["domain"] == domain and claim["status"] == "pending"
    record = claim["verification"]
    assert record["type"] == "TXT" and record["name"] == f"_synergyhub-challenge.{domain}"
    assert record["value"].startswith("synergyhub-verification=")

    # Unverified: the domain serves nothing.
    pending = await client.get("/", headers={"Host": domain})
    assert pending.status_code == 404
    assert (await client.get(SETTINGS, headers={"Host": domain})).status_code == 404

    failed = await client.post(_domains(account, f"/{domain}/verify"), headers=admin)
    assert failed.status_code == 422
    problem = await failed.get_json()
    assert problem["type"].endswith("/domain-not-verified")
    assert problem["record"] == record
    wl.resolver.set(record["name"], ["v=spf1 -all", "synergyhub-verification=wrong"])
    assert (await client.post(_domains(account, f"/{domain}/verify"),
                              headers=admin)).status_code == 422

    wl.resolver.set(record["name"], ["v=spf1 -all", record["value"]])
    verified = await client.post(_domains(account, f"/{domain}/verify"), headers=admin)
    assert verified.status_code == 200, await verified.get_data(as_text=True)
    assert (await verified.get_json())["status"] == "active"

    page = await client.get("/", headers={"Host": f"{domain}:443"})
    assert page.status_code == 200
    assert "Alpha page" in await page.get_data(as_text=True)
    settings = await client.get(SETTINGS, headers={"Host": domain})
    assert (await settings.get_json())["account"]["slug"] == slug

    listing = await (await client.get(_domains(account), headers=admin)).get_json()
    assert [d["status"] for d in listing["items"]] == ["active"]
    one = await client.get(_domains(account, f"/{domain}"), headers=admin)
    assert (await one.get_json())["verified_at"]

    removed = await client.delete(_domains(account, f"/{domain}"), headers=admin)
    assert removed.status_code == 204
    assert (await client.get("/", headers={"Host": domain})).status_code == 404
    assert (await client.delete(_domains(account, f"/{domain}"),
                                headers=admin)).status_code == 404

    events = await (await client.get(f"/api/v1/accounts/{account}/activity?limit=500",
                                     headers=admin)).get_json()
    actions = [e["action"] for e in events["items"]]
    for action in ("domain.added", "domain.verification_failed", "domain.verified",
                   "domain.removed"):
        assert action in actions, action
    del sol


async def test_a_tenants_domain_never_serves_another_tenant(client: Any, personas: Any,
                                                            wl: WhiteLabelApp) -> None:
    alpha, alpha_slug, alpha_sol = await _published(client, personas, "Alpha only")
    beta, beta_slug, beta_sol = await _published(client, personas, "Beta only")
    gamma, gamma_slug, gamma_sol = await _published(client, personas, "Gamma only", tenant=1)
    admin = personas["SUPERADMIN"].headers()
    domain = _fresh_domain("alpha")
    claim = await (await client.post(_domains(alpha), json={"domain": domain},
                                      headers=admin)).get_json()
    wl.resolver.set(claim["verification"]["name"], [claim["verification"]["value"]])
    assert (await client.post(_domains(alpha, f"/{domain}/verify"),
                              headers=admin)).status_code == 200

    host = {"Host": domain}
    assert "Alpha only" in await (await client.get("/", headers=host)).get_data(as_text=True)
    for path in (f"/t/{beta_sol}/{beta_slug}", f"/t/{gamma_sol}/{gamma_slug}"):
        response = await client.get(path, headers=host)
        assert response.status_code == 404, path
    assert (await client.get(f"/t/{alpha_sol}/{alpha_slug}", headers=host)).status_code == 200
    for query in (f"?solution={beta_sol}&account={beta_slug}",
                  f"?solution={gamma_sol}&account={gamma_slug}"):
        assert (await client.get(SETTINGS + query, headers=host)).status_code == 404
    own = await client.get(f"{SETTINGS}?solution={alpha_sol}&account={alpha_slug}", headers=host)
    assert own.status_code == 200

    # Another account cannot claim (or take over) the active domain.
    taken = await client.post(_domains(beta), json={"domain": domain}, headers=admin)
    assert taken.status_code == 409
    assert "Alpha" not in await taken.get_data(as_text=True)

    # A pending claim by another account for a not-yet-active domain stays harmless.
    other = _fresh_domain("shared")
    for account in (alpha, beta):
        assert (await client.post(_domains(account), json={"domain": other},
                                  headers=admin)).status_code == 201
    beta_claim = await (await client.get(_domains(beta, f"/{other}"), headers=admin)).get_json()
    wl.resolver.set(beta_claim["verification"]["name"], [beta_claim["verification"]["value"]])
    assert (await client.post(_domains(alpha, f"/{other}/verify"),
                              headers=admin)).status_code == 422  # alpha's token is not there
    assert (await client.post(_domains(beta, f"/{other}/verify"),
                              headers=admin)).status_code == 200
    assert "Beta only" in await (await client.get("/", headers={"Host": other})).get_data(
        as_text=True)
    del gamma


async def test_unknown_hosts_get_404(client: Any, personas: Any) -> None:
    _, slug, sol = await _published(client, personas, "Somewhere")
    not_found = await client.get(f"/t/{sol}/no-such")
    body = await not_found.get_data()
    for host in ("unknown.example", "evil.example:8080", "bad host", "999.1.1.1", ""):
        for path in ("/", f"/t/{sol}/{slug}"):
            response = await client.get(path, headers={"Host": host})
            assert (response.status_code, await response.get_data()) == (404, body), (host, path)
        assert (await client.get(f"{SETTINGS}?solution={sol}&account={slug}",
                                 headers={"Host": host})).status_code == 404
    assert (await client.get(f"/t/{sol}/{slug}", headers={"Host": "platform.test"})
            ).status_code == 200


async def test_solution_domain_and_account_subdomains(client: Any, personas: Any) -> None:
    tenant = personas.tenants[1]
    account, slug, sol = await _published(client, personas, "Subdomain page", tenant=1)
    home_account, home_slug, home_sol = await _published(client, personas, "Home page")
    solution_domain = f"sol-{uuid.uuid4().hex[:6]}.example.net"
    patched = await client.patch(f"/api/v1/solutions/{tenant.solution_id}",
                                 json={"domain": solution_domain},
                                 headers=personas["SUPERADMIN"].headers())
    assert patched.status_code == 200, await patched.get_data(as_text=True)

    sub = {"Host": f"{slug}.{solution_domain}"}
    assert "Subdomain page" in await (await client.get("/", headers=sub)).get_data(as_text=True)
    assert (await (await client.get(SETTINGS, headers=sub)).get_json())["account"]["slug"] == slug
    on_solution = {"Host": solution_domain}
    assert (await client.get("/", headers=on_solution)).status_code == 404
    assert (await client.get(f"/t/{sol}/{slug}", headers=on_solution)).status_code == 200
    assert (await client.get(f"/t/{home_sol}/{home_slug}", headers=on_solution)
            ).status_code == 404
    assert (await client.get("/", headers={"Host": f"nope.{solution_domain}"})).status_code == 404

    # Platform and Solution hosts cannot be claimed as custom domains.
    admin = personas["SUPERADMIN"].headers()
    for domain in ("platform.test", f"x.{solution_domain}", solution_domain, "localhost",
                   "10.0.0.1", "example", "-bad-.example.com", "a..example.com",
                   "exa mple.com", "ex_ample.com"):
        response = await client.post(_domains(account), json={"domain": domain}, headers=admin)
        assert response.status_code == 422, domain
    del home_account


async def test_only_admins_manage_domains(client: Any, personas: Any) -> None:
    account = personas.home_account
    member = personas["MEMBER"].headers()
    assert (await client.post(_domains(account), json={"domain": "m.example.org"},
                              headers=member)).status_code == 403
    assert (await client.get(_domains(account), headers=member)).status_code == 200
    assert (await client.post(_domains(account, "/m.example.org/verify"),
                              headers=member)).status_code == 403
    assert (await client.delete(_domains(account, "/m.example.org"),
                                headers=member)).status_code == 403


class _BrokenDns:
    async def txt(self, name: str) -> list[str]:
        from core.whitelabel.domains import DnsLookupError

        raise DnsLookupError(f"DNS lookup of {name} failed: Timeout")


async def test_dns_outage_is_a_503_and_changes_nothing(client: Any, personas: Any,
                                                       wl: WhiteLabelApp) -> None:
    account, _, _ = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    domain = _fresh_domain("outage")
    assert (await client.post(_domains(account), json={"domain": domain},
                              headers=admin)).status_code == 201
    service = wl.whitelabel
    resolver, service.resolver = service.resolver, _BrokenDns()
    try:
        response = await client.post(_domains(account, f"/{domain}/verify"), headers=admin)
    finally:
        service.resolver = resolver
    assert response.status_code == 503
    assert (await response.get_json())["type"].endswith("/dns-unavailable")
    claim = await (await client.get(_domains(account, f"/{domain}"), headers=admin)).get_json()
    assert claim["status"] == "pending"
