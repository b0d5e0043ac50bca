"""Settings cascade over HTTP: locks, provenance, audit of refused writes."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_cascade_locks_and_provenance(client: Any, personas: Any) -> None:
    sol, acc, grp = personas.home_solution, personas.home_account, personas.home_group
    sol_admin, acc_admin = personas["SOLUTION_ADMIN"], personas["ACCOUNT_ADMIN"]

    response = await client.get(f"/api/v1/accounts/{acc}/settings/v2v",
                                headers=personas["MEMBER"].headers())
    assert response.status_code == 200
    values = (await response.get_json())["values"]
    assert values["voice"] == {"value": "alloy", "source": "platform", "source_id": "platform",
                               "locked": False}

    response = await client.put(f"/api/v1/solutions/{sol}/settings/v2v",
                                json={"values": {"model": "gpt-realtime-mini"},
                                      "locks": ["model"]}, headers=sol_admin.headers())
    assert response.status_code == 200, await response.get_data(as_text=True)

    response = await client.put(f"/api/v1/accounts/{acc}/settings/v2v",
                                json={"values": {"voice": "verse"}}, headers=acc_admin.headers())
    assert response.status_code == 200
    response = await client.put(f"/api/v1/accounts/{acc}/groups/{grp}/settings/v2v",
                                json={"values": {"voice": "shimmer"}},
                                headers=personas["GROUP_ADMIN"].headers())
    assert response.status_code == 200

    refused = await client.put(f"/api/v1/accounts/{acc}/settings/v2v",
                               json={"values": {"model": "other"}}, headers=acc_admin.headers())
    assert refused.status_code == 403
    assert (await refused.get_json())["locked"] == ["model"]

    response = await client.get(f"/api/v1/accounts/{acc}/settings/v2v?group_id={grp}",
                                headers=personas["MEMBER"].headers())
    values = (await response.get_json())["values"]
    assert values["model"]["value"] == "gpt-realtime-mini" and values["model"]["locked"]
    assert values["voice"]["value"] == "shimmer" and values["voice"]["source"] == "group"

    activity = await client.get(f"/api/v1/accounts/{acc}/activity?action="
                                "settings.locked_write_refused", headers=acc_admin.headers())
    events = (await activity.get_json())["items"]
    assert events and events[-1]["details"]["keys"] == ["model"]


async def test_cascade_rejects_unknown_keys_and_bad_values(client: Any, personas: Any) -> None:
    acc, admin = personas.home_account, personas["ACCOUNT_ADMIN"]
    for body in ({"values": {"$where": "1"}}, {"values": {"nope": 1}},
                 {"values": {"voice": {"$ne": 1}}}, {"values": {}, "extra": 1}):
        response = await client.put(f"/api/v1/accounts/{acc}/settings/v2v", json=body,
                                    headers=admin.headers())
        assert response.status_code == 422, body
    member = await client.put(f"/api/v1/accounts/{acc}/settings/v2v",
                              json={"values": {"voice": "x"}},
                              headers=personas["MEMBER"].headers())
    assert member.status_code == 403
    unknown = await client.get(f"/api/v1/accounts/{acc}/settings/nosuch",
                               headers=admin.headers())
    assert unknown.status_code == 404


async def test_cached_layers_see_own_writes_at_once_and_other_instances_within_ttl(
    synergyhub_services: Any,
) -> None:
    """The app's cascade store caches layers; writes through it evict, others age out."""
    import asyncio
    import uuid

    from core.tenancy.cascade import CascadeStore

    db = synergyhub_services.db
    solution, account = f"sol-{uuid.uuid4().hex[:8]}", f"acc-{uuid.uuid4().hex[:8]}"
    targets = {"solution": solution, "account": account}
    this_instance = CascadeStore(db, cache_seconds=0.5)
    other_instance = CascadeStore(db)

    assert await this_instance.layers("v2v", targets) == []  # "nothing stored" is cached too
    await this_instance.write("account", account, "v2v", {"voice": "verse"})
    layers = await this_instance.layers("v2v", targets)
    assert [(layer.level, dict(layer.values)) for layer in layers] == [
        ("account", {"voice": "verse"})]

    await other_instance.write("solution", solution, "v2v", {"model": "m2"}, ["model"])
    stale = await this_instance.layers("v2v", targets)
    assert [layer.level for layer in stale] == ["account"]  # served from the cache
    await asyncio.sleep(0.6)
    fresh = await this_instance.layers("v2v", targets)
    assert [(layer.level, dict(layer.values), layer.locks) for layer in fresh] == [
        ("solution", {"model": "m2"}, frozenset({"model"})),
        ("account", {"voice": "verse"}, frozenset()),
    ]

    await this_instance.write("account", account, "v2v", {"language": "fr"}, replace=True)
    replaced = await this_instance.layers("v2v", {"account": account})
    assert [dict(layer.values) for layer in replaced] == [{"language": "fr"}]


async def test_plugin_values_are_a_copy_of_the_cache(synergyhub_services: Any,
                                                      personas: Any) -> None:
    """A plugin that changes the settings it got does not change them for anybody else."""
    from core.tenancy.directory import principal_from
    from core.tenancy.models import AccountContext

    services = synergyhub_services
    account, solution = await services.tenancy.directory.account_with_solution(
        personas.home_account)
    principal = principal_from(await services.db["users"].find_one(
        {"_id": personas["MEMBER"].uid}))
    ctx = AccountContext(principal=principal, solution=solution, account=account)
    schema = services.plugins.infos["v2v"].manifest.solution_settings
    cascade = services.tenancy.cascade

    first = await cascade.plugin_values("v2v", schema, ctx)
    assert first["token_providers"]
    first["token_providers"].append("mutated")
    first["voice"] = "mutated"
    second = await cascade.plugin_values("v2v", schema, ctx)
    assert "mutated" not in second["token_providers"] and second["voice"] != "mutated"
