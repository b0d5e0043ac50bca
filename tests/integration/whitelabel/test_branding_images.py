"""Branding images: upload through fake-gcs-server, confirm, use as the logo, serve at /media."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.integration.whitelabel.conftest import LOOKUP_TTL
from tests.integration.whitelabel.support import HERO, new_account, publish_page

pytestmark = pytest.mark.asyncio(loop_scope="session")

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 64
ICO = b"\x00\x00\x01\x00\x01\x00\x10\x10" + b"\x00" * 64


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        yield client


def images(account: str) -> str:
    return f"/api/v1/accounts/{account}/branding/images"


async def start(client: Any, account: str, headers: dict[str, str], content_type: str,
                size: int) -> Any:
    return await client.post(images(account), json={"content_type": content_type,
                                                    "size": size}, headers=headers)


async def upload(client: Any, http: httpx.AsyncClient, account: str, headers: dict[str, str],
                 data: bytes, content_type: str = "image/png") -> Any:
    """Start, PUT the bytes to the signed URL, complete; returns the completion response."""
    started = await start(client, account, headers, content_type, len(data))
    assert started.status_code == 201, await started.get_data(as_text=True)
    body = await started.get_json()
    assert started.headers["Cache-Control"] == "no-store"
    assert body["image"]["status"] == "pending" and body["max_bytes"] == 1024 * 1024
    upload_to = body["upload"]
    put = await http.put(upload_to["url"], content=data,
                         headers={**upload_to["headers"], "Content-Type": content_type})
    assert put.status_code == 200, put.text
    return await client.post(f"{images(account)}/{body['image']['id']}/complete",
                             headers=headers)


async def test_upload_use_as_logo_and_serve(client: Any, personas: Any, wl: Any,
                                            http: httpx.AsyncClient) -> None:
    account, slug, sol = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    done = await upload(client, http, account, admin, PNG)
    assert done.status_code == 200, await done.get_data(as_text=True)
    image = await done.get_json()
    assert image["status"] == "ready" and image["url"] == f"/media/{image['id']}"
    assert "object_name" not in image

    served = await client.get(image["url"])
    assert served.status_code == 200
    assert await served.get_data() == PNG
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Cache-Control"].startswith("public, max-age=")
    etag = served.headers["ETag"]
    again = await client.get(image["url"], headers={"If-None-Match": etag})
    assert again.status_code == 304 and await again.get_data() == b""

    branding = await client.put(f"/api/v1/accounts/{account}/branding",
                                json={"logo_url": image["url"]}, headers=admin)
    assert branding.status_code == 200, await branding.get_data(as_text=True)
    await publish_page(client, account, admin, [HERO])
    page = await (await client.get(f"/t/{sol}/{slug}")).get_data(as_text=True)
    assert f'src="{image["url"]}"' in page
    settings = await (await client.get(
        f"/api/v1/public/tenant-settings?solution={sol}&account={slug}")).get_json()
    assert settings["branding"]["logo_url"] == image["url"]

    listed = await (await client.get(images(account), headers=admin)).get_json()
    assert [item["id"] for item in listed["items"]] == [image["id"]]

    in_use = await client.delete(f"{images(account)}/{image['id']}", headers=admin)
    assert in_use.status_code == 409
    assert (await in_use.get_json())["type"].endswith("/asset-in-use")
    # Out of the branding, but the published page (a snapshot) still shows it.
    await client.put(f"/api/v1/accounts/{account}/branding", json={}, headers=admin)
    shown = await client.delete(f"{images(account)}/{image['id']}", headers=admin)
    assert shown.status_code == 409
    await client.post(f"/api/v1/accounts/{account}/landing-page/publish", headers=admin)
    record = await wl.services.db["branding_assets"].find_one({"_id": image["id"]})
    gone = await client.delete(f"{images(account)}/{image['id']}", headers=admin)
    assert gone.status_code == 204
    assert (await client.get(image["url"])).status_code == 404
    assert await wl.services.storage.stat(record["object_name"]) is None


async def test_webp_and_ico_are_accepted(client: Any, personas: Any,
                                         http: httpx.AsyncClient) -> None:
    account, _, _ = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    for data, content_type in ((WEBP, "image/webp"), (ICO, "image/x-icon")):
        done = await upload(client, http, account, admin, data, content_type)
        assert done.status_code == 200, await done.get_data(as_text=True)
        favicon = (await done.get_json())["url"]
        served = await client.get(favicon)
        assert served.headers["Content-Type"] == content_type
    response = await client.put(f"/api/v1/accounts/{account}/branding",
                                json={"favicon_url": favicon}, headers=admin)
    assert response.status_code == 200


async def test_refusals_are_clear_and_keep_nothing(client: Any, personas: Any, wl: Any,
                                                   http: httpx.AsyncClient) -> None:
    account, _, _ = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    for content_type, size, slug in (("image/svg+xml", 100, "unsupported-content-type"),
                                     ("text/html", 100, "unsupported-content-type"),
                                     ("image/png", 2 * 1024 * 1024, "file-too-large"),
                                     ("image/png", 0, "empty-file")):
        refused = await start(client, account, admin, content_type, size)
        assert refused.status_code == 422, content_type
        assert (await refused.get_json())["type"].endswith(f"/{slug}")
    bad_body = await client.post(images(account), json={"content_type": "image/png",
                                                        "size": 5, "name": "../x"},
                                 headers=admin)
    assert bad_body.status_code == 422

    html = b"<html><script>alert(1)</script></html>" + b" " * 64
    started = await (await start(client, account, admin, "image/png", len(html))).get_json()
    record = await wl.services.db["branding_assets"].find_one({"_id": started["image"]["id"]})
    put = await http.put(started["upload"]["url"], content=html,
                         headers=started["upload"]["headers"])
    assert put.status_code == 200  # the bucket takes any bytes; completion checks them
    mislabelled = await client.post(f"{images(account)}/{record['_id']}/complete",
                                    headers=admin)
    assert mislabelled.status_code == 422
    assert (await mislabelled.get_json())["type"].endswith("/content-mismatch")
    assert await wl.services.storage.stat(record["object_name"]) is None  # discarded
    assert (await (await client.get(images(account), headers=admin)).get_json())["items"] == []
    assert await wl.services.db["branding_assets"].count_documents({"account_id": account}) == 0

    member = personas["MEMBER"].headers()
    home = personas.home_account
    assert (await start(client, home, member, "image/png", len(PNG))).status_code == 403

    pending = await (await start(client, account, admin, "image/png", len(PNG))).get_json()
    assert (await client.get(pending["image"]["url"])).status_code == 404
    unknown = await client.put(f"/api/v1/accounts/{account}/branding",
                               json={"logo_url": pending["image"]["url"]}, headers=admin)
    assert unknown.status_code == 422
    assert (await unknown.get_json())["errors"][0]["field"] == "logo_url"
    for path in ("/media/nope", "/media/" + "0" * 24, "/media/" + "0" * 32,
                 "/media/../etc/passwd"):
        assert (await client.get(path)).status_code == 404, path


async def test_images_stay_with_their_account(client: Any, personas: Any, wl: Any,
                                              http: httpx.AsyncClient) -> None:
    first, _, _ = await new_account(client, personas)
    second, _, _ = await new_account(client, personas)
    admin = personas["SUPERADMIN"].headers()
    image = await (await upload(client, http, first, admin, PNG)).get_json()

    borrowed = await client.put(f"/api/v1/accounts/{second}/branding",
                                json={"logo_url": image["url"]}, headers=admin)
    assert borrowed.status_code == 422
    other = await client.post(f"{images(second)}/{image['id']}/complete", headers=admin)
    assert other.status_code == 404
    assert (await client.delete(f"{images(second)}/{image['id']}",
                                headers=admin)).status_code == 404
    assert (await client.get(image["url"], headers={"Host": "unknown.example"})).status_code \
        == 404

    # Through the generic settings API too: another account's image, or any uploaded
    # image at the Solution level, is refused.
    generic = await client.put(f"/api/v1/accounts/{second}/settings/branding",
                               json={"values": {"logo_url": image["url"]}}, headers=admin)
    assert generic.status_code == 422
    solution = personas.tenants[0].solution_id
    at_solution = await client.put(f"/api/v1/solutions/{solution}/settings/branding",
                                   json={"values": {"favicon_url": image["url"]}},
                                   headers=admin)
    assert at_solution.status_code == 422
    assert (await at_solution.get_json())["errors"][0]["field"] == "favicon_url"
    own = await client.put(f"/api/v1/accounts/{first}/settings/branding",
                           json={"values": {"logo_url": image["url"]}}, headers=admin)
    assert own.status_code == 200, await own.get_data(as_text=True)

    # A tenant's own domain shows its images only.
    domain = f"images-{second}.example"
    claim = await (await client.post(f"/api/v1/accounts/{second}/domains",
                                      json={"domain": domain}, headers=admin)).get_json()
    wl.resolver.set(claim["verification"]["name"], [claim["verification"]["value"]])
    verified = await client.post(f"/api/v1/accounts/{second}/domains/{domain}/verify",
                                 headers=admin)
    assert verified.status_code == 200, await verified.get_data(as_text=True)
    mine = await (await upload(client, http, second, admin, PNG)).get_json()
    assert (await client.get(mine["url"], headers={"Host": domain})).status_code == 200
    assert (await client.get(image["url"], headers={"Host": domain})).status_code == 404

    assert (await client.delete(f"/api/v1/accounts/{first}", headers=admin)).status_code == 204
    await asyncio.sleep(LOOKUP_TTL + 0.05)
    assert (await client.get(image["url"])).status_code == 404  # archived tenant
