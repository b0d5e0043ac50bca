"""Break-glass impersonation: SUPERADMIN only, reason required, read-only, audited."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_impersonation_is_read_only_time_boxed_and_visible(
    client: Any, personas: Any
) -> None:
    acc = personas.home_account
    member, superadmin = personas["MEMBER"], personas["SUPERADMIN"]
    body = {"uid": member.uid, "reason": "ticket 4711: member cannot see doc", "minutes": 5}

    refused = await client.post("/api/v1/admin/impersonations", json=body,
                                headers=personas["SOLUTION_ADMIN"].headers())
    assert refused.status_code == 403
    no_reason = await client.post("/api/v1/admin/impersonations",
                                  json={**body, "reason": "x"}, headers=superadmin.headers())
    assert no_reason.status_code == 422

    started = await client.post("/api/v1/admin/impersonations", json=body,
                                headers=superadmin.headers())
    assert started.status_code == 201, await started.get_data(as_text=True)
    session = await started.get_json()
    assert session["read_only"] is True
    as_member = superadmin.headers(**{"X-Impersonation": session["id"]})

    me = await (await client.get("/api/v1/me", headers=as_member)).get_json()
    assert me["uid"] == member.uid and me["impersonator"] == superadmin.uid

    # Reads work as the member; writes are refused (read-only by default).
    listed = await client.get(f"/api/v1/accounts/{acc}/documents", headers=as_member)
    assert listed.status_code == 200
    write = await client.post(f"/api/v1/accounts/{acc}/documents", headers=as_member,
                              json={"title": "x", "content_type": "text/plain", "size": 1})
    assert write.status_code == 403

    # Another user cannot use the session id.
    stolen = await client.get("/api/v1/me", headers=personas["ACCOUNT_ADMIN"].headers(
        **{"X-Impersonation": session["id"]}))
    assert stolen.status_code == 403

    activity = await client.get(f"/api/v1/accounts/{acc}/activity?action=impersonation.started",
                                headers=personas["ACCOUNT_ADMIN"].headers())
    events = (await activity.get_json())["items"]
    assert events[-1]["target"] == member.uid
    assert events[-1]["details"]["reason"] == body["reason"]


async def test_writes_during_write_impersonation_are_stamped(client: Any, personas: Any) -> None:
    acc = personas.home_account
    admin, superadmin = personas["ACCOUNT_ADMIN"], personas["SUPERADMIN"]
    started = await client.post("/api/v1/admin/impersonations", headers=superadmin.headers(),
                                json={"uid": admin.uid, "reason": "assisting with group setup",
                                      "minutes": 5, "write": True})
    session = await started.get_json()
    created = await client.post(f"/api/v1/accounts/{acc}/groups", json={"name": "Support"},
                                headers=superadmin.headers(**{"X-Impersonation": session["id"]}))
    assert created.status_code == 201
    activity = await client.get(f"/api/v1/accounts/{acc}/activity?action=group.created",
                                headers=admin.headers())
    event = (await activity.get_json())["items"][-1]
    assert event["actor"] == admin.uid and event["impersonator"] == superadmin.uid
