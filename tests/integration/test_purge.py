"""`synergyhub admin purge-account`: the only hard delete, archived accounts only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _purge(settings: Any, account_id: str, *flags: str,
           without: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if k not in without},
           "MONGODB_URI": settings.mongodb_uri.get_secret_value(),
           "SYNERGYHUB_MONGODB_DATABASE": settings.mongodb_database}
    return subprocess.run([sys.executable, "-m", "core.kernel.cli", "admin", "purge-account",
                           account_id, *flags], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


async def test_purge_only_archived_and_only_that_account(
    client: Any, personas: Any, synergyhub_settings: Any, synergyhub_services: Any
) -> None:
    sol_admin = personas["SOLUTION_ADMIN"].headers()
    created = await client.post(f"/api/v1/solutions/{personas.home_solution}/accounts",
                                json={"slug": "to-purge", "name": "To purge"}, headers=sol_admin)
    account = (await created.get_json())["id"]
    doc = await client.post(f"/api/v1/accounts/{account}/documents", headers=sol_admin,
                            json={"title": "t", "content_type": "text/plain", "size": 1,
                                  "scope": "account"})
    assert doc.status_code == 201
    keep = await client.post(f"/api/v1/accounts/{personas.home_account}/documents",
                             headers=sol_admin, json={"title": "keep", "size": 1,
                                                      "content_type": "text/plain",
                                                      "scope": "account"})
    keep_id = (await keep.get_json())["id"]

    refused = _purge(synergyhub_settings, account, "--yes")
    assert refused.returncode == 1 and "Archive the account first" in refused.stderr
    assert _purge(synergyhub_settings, account).returncode == 2  # no --yes

    assert (await client.delete(f"/api/v1/accounts/{account}", headers=sol_admin)).status_code \
        == 204
    no_storage = _purge(synergyhub_settings, account, "--yes",
                        without=("STORAGE_EMULATOR_HOST",))
    assert no_storage.returncode == 2 and "--keep-files" in no_storage.stderr
    assert await synergyhub_services.db["accounts"].find_one({"_id": account}) is not None
    done = _purge(synergyhub_settings, account, "--yes")
    assert done.returncode == 0, done.stderr
    assert '"documents": 1' in done.stdout

    db = synergyhub_services.db
    assert await db["documents"].count_documents({"account_id": account}) == 0
    assert await db["accounts"].find_one({"_id": account}) is None
    assert await db["documents"].find_one({"_id": keep_id}) is not None
    # The audit chain of the purged account is kept.
    assert await db["audit_events"].count_documents({"chain": account}) >= 1


async def test_purge_removes_white_label_data_usage_and_stored_files(
    client: Any, personas: Any, synergyhub_settings: Any, synergyhub_services: Any
) -> None:
    import httpx

    from tests.integration.test_storage import uploaded
    from tests.integration.whitelabel.support import HERO, new_account, publish_page

    account, _, _ = await new_account(client, personas)
    admin = personas["SUPERADMIN"]
    await publish_page(client, account, admin.headers(), [HERO])
    domain = await client.post(f"/api/v1/accounts/{account}/domains",
                               json={"domain": f"{account}.purge.example"},
                               headers=admin.headers())
    assert domain.status_code == 201, await domain.get_data(as_text=True)
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        document = await uploaded(client, http, admin, account, content_type="text/plain",
                                  data=b"to be purged\n", scope="account")
        logo = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
        started = await (await client.post(
            f"/api/v1/accounts/{account}/branding/images", headers=admin.headers(),
            json={"content_type": "image/png", "size": len(logo)})).get_json()
        put = await http.put(started["upload"]["url"], content=logo,
                             headers=started["upload"]["headers"])
        assert put.status_code == 200
    image = await client.post(
        f"/api/v1/accounts/{account}/branding/images/{started['image']['id']}/complete",
        headers=admin.headers())
    assert image.status_code == 200, await image.get_data(as_text=True)
    group = await client.post(f"/api/v1/accounts/{account}/groups", json={"name": "Ward"},
                              headers=admin.headers())
    assert group.status_code == 201, await group.get_data(as_text=True)
    group_id = (await group.get_json())["id"]
    group_settings = await client.put(
        f"/api/v1/accounts/{account}/groups/{group_id}/settings/v2v",
        json={"values": {"voice": "verse"}}, headers=admin.headers())
    assert group_settings.status_code == 200, await group_settings.get_data(as_text=True)
    db = synergyhub_services.db
    await db["ai_usage"].insert_one({"_id": f"{account}:2026-12-04", "account_id": account,
                                     "day": "2026-12-04", "requests": 1})
    await db["broker_counters"].insert_one({"_id": f"minute:{account}:0", "account_id": account,
                                            "total": 1, "users": {}})
    stored = await db["documents"].find_one({"_id": document["id"]})
    storage = synergyhub_services.storage
    assert await storage.stat(stored["object_name"]) is not None
    other_page = await db["landing_pages"].count_documents({})

    response = await client.delete(f"/api/v1/accounts/{account}", headers=admin.headers())
    assert response.status_code == 204
    done = _purge(synergyhub_settings, account, "--yes")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["deleted"]["stored_objects"] == 2  # the document's file and the logo
    assert report["deleted"]["branding_assets"] == 1

    assert await storage.stat(stored["object_name"]) is None
    assert await db["settings_layers"].count_documents({"target_id": group_id}) == 0
    for name in ("landing_page_versions", "custom_domains", "ai_usage", "documents",
                 "branding_assets", "broker_counters", "groups"):
        assert await db[name].count_documents({"account_id": account}) == 0, name
    assert await db["landing_pages"].find_one({"_id": account}) is None
    assert await db["landing_pages"].count_documents({}) == other_page - 1  # only this one
    assert await db["settings_layers"].count_documents({"target_id": account}) == 0
