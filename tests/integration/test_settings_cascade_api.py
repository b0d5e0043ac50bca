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
