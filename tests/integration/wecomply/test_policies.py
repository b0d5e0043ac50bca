"""Policies, versions, attestations and compliance status over HTTP, persona by persona.

The module's tenancy is fresh (seeded by the ``wc`` fixture), so the home
account's audience is exactly: ACCOUNT_ADMIN, MEMBER, GROUP_ADMIN and
GROUP_MEMBER (VIEWERs owe nothing); the home group's audience is GROUP_ADMIN
and GROUP_MEMBER.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.wecomply.support import WeComplyApp, ok, problem

pytestmark = pytest.mark.asyncio(loop_scope="session")

PAST = (datetime.now(UTC) - timedelta(days=2)).isoformat()
FUTURE = (datetime.now(UTC) + timedelta(days=30)).isoformat()


async def create(wc: WeComplyApp, who: str, **body: Any) -> Any:
    payload = {"title": "Acceptable use", "body": "Use company devices responsibly.", **body}
    return await wc.post(who, "policies", payload)


async def status(wc: WeComplyApp, path: str = "status", who: str = "ACCOUNT_ADMIN") -> Any:
    return await ok(await wc.get(who, path))


def row(report: dict[str, Any], policy_id: str) -> dict[str, Any]:
    return next(p for p in report["policies"] if p["policy_id"] == policy_id)


async def test_policy_lifecycle_acknowledgements_and_status(wc: WeComplyApp) -> None:
    p = wc.personas
    created = await ok(await create(wc, "ACCOUNT_ADMIN", due_at=FUTURE, summary="First"), 201)
    pid = created["id"]
    assert (created["scope"], created["current_version"], created["status"]) == (
        "account", 1, "active")
    assert created["version"]["body"] == "Use company devices responsibly."
    assert created["version"]["version"] == 1 and "read_keys" not in created

    # Everyone in the account reads it; the current version's text comes with it.
    got = await ok(await wc.get("VIEWER", f"policies/{pid}"))
    assert got["version"]["version"] == 1

    owed = await ok(await wc.get("MEMBER", "me/obligations"))
    mine = [o for o in owed["items"] if o["policy_id"] == pid]
    assert mine == [{**mine[0], "acknowledged": False, "overdue": False, "version": 1}]
    assert (await ok(await wc.get("VIEWER", "me/obligations")))["items"] == []

    attestation = await ok(await wc.post("MEMBER", f"policies/{pid}/acknowledge",
                                         {"version": 1}), 201)
    assert (attestation["user_id"], attestation["version"]) == (p["MEMBER"].uid, 1)
    assert attestation["scope"] == "account" and attestation["owner_id"] == p["MEMBER"].uid
    again = await ok(await wc.post("MEMBER", f"policies/{pid}/acknowledge", {"version": 1}))
    assert again["id"] == attestation["id"]  # 200: acknowledging twice changes nothing
    # The member cannot edit or delete their attestation: only the policy's writers hold
    # its write keys.
    stored = await wc.services.db["wecomply_attestations"].find_one({"_id": attestation["id"]})
    assert stored["write_keys"] == [f"w:acc:{wc.account}"]
    assert stored["read_keys"] == [f"acc:{wc.account}"]

    report = await status(wc)
    assert row(report, pid) | {} == {**row(report, pid), "obligations": 4, "acknowledged": 1,
                                     "share_acknowledged": 0.25, "overdue": 0}

    # A new version resets what is owed; its due date is in the past, so it is overdue.
    v2 = await ok(await wc.post("ACCOUNT_ADMIN", f"policies/{pid}/versions",
                                {"body": "Use devices responsibly; no personal USB sticks.",
                                 "summary": "USB rule", "due_at": PAST}), 201)
    assert v2["current_version"] == 2 and v2["version"]["summary"] == "USB rule"
    report = await status(wc)
    assert (row(report, pid)["acknowledged"], row(report, pid)["overdue"]) == (0, 4)
    stale = await problem(await wc.post("MEMBER", f"policies/{pid}/acknowledge",
                                        {"version": 1}), 409, "stale-policy-version")
    assert stale["current_version"] == 2
    owed = await ok(await wc.get("MEMBER", "me/obligations"))
    assert [o["overdue"] for o in owed["items"] if o["policy_id"] == pid] == [True]
    await ok(await wc.post("MEMBER", f"policies/{pid}/acknowledge", {"version": 2}), 201)
    await ok(await wc.post("GROUP_MEMBER", f"policies/{pid}/acknowledge", {"version": 2}), 201)
    report = await status(wc)
    assert row(report, pid) | {} == {**row(report, pid), "obligations": 4, "acknowledged": 2,
                                     "overdue": 2, "share_acknowledged": 0.5}

    versions = await ok(await wc.get("MEMBER", f"policies/{pid}/versions"))
    assert [v["version"] for v in versions["items"]] == [2, 1]
    old = await ok(await wc.get("MEMBER", f"policies/{pid}/versions/1"))
    assert old["body"] == "Use company devices responsibly."
    await problem(await wc.get("MEMBER", f"policies/{pid}/versions/9"), 404)

    # Admins see every attestation; a member sees their own.
    everyone = await ok(await wc.get("ACCOUNT_ADMIN", f"policies/{pid}/attestations"))
    assert len(everyone["items"]) == 3
    own = await ok(await wc.get("GROUP_MEMBER", f"policies/{pid}/attestations"))
    assert {a["user_id"] for a in own["items"]} == {p["GROUP_MEMBER"].uid}
    current = await ok(await wc.get("ACCOUNT_ADMIN", f"policies/{pid}/attestations?version=2"))
    assert len(current["items"]) == 2

    # Retiring a policy ends the obligations.
    retired = await ok(await wc.patch("ACCOUNT_ADMIN", f"policies/{pid}", {"status": "retired"}))
    assert retired["status"] == "retired"
    assert pid not in [r["policy_id"] for r in (await status(wc))["policies"]]
    await problem(await wc.post("MEMBER", f"policies/{pid}/acknowledge", {"version": 2}), 409,
                  "policy-retired")
    await problem(await wc.post("ACCOUNT_ADMIN", f"policies/{pid}/versions", {"body": "x"}),
                  409, "policy-retired")

    actions = [e["action"] async for e in wc.services.tenancy.audit.iter_chain(wc.account)
               if e["target"] == f"wecomply_policies:{pid}"]
    assert actions == ["wecomply.policy_created", "wecomply.policy_acknowledged",
                       "wecomply.policy_version_published", "wecomply.policy_acknowledged",
                       "wecomply.policy_acknowledged", "wecomply.policy_updated"]


async def test_group_policies_overdue_lists_and_group_status(wc: WeComplyApp) -> None:
    p = wc.personas
    group = p.home_group
    other_group = p.tenants[0].groups[wc.account][1]
    policy = await ok(await create(wc, "GROUP_ADMIN", title="Cardiology hygiene",
                                   scope="group", group_id=group, due_at=PAST), 201)
    pid = policy["id"]
    assert (policy["scope"], policy["group_id"]) == ("group", group)
    # Outside the group it does not exist.
    await problem(await wc.get("MEMBER", f"policies/{pid}"), 404)
    await problem(await wc.post("MEMBER", f"policies/{pid}/acknowledge", {"version": 1}), 404)
    assert pid not in [x["id"] for x in (await ok(await wc.get("MEMBER", "policies")))["items"]]

    overdue = await ok(await wc.get("GROUP_ADMIN", f"groups/{group}/overdue"))
    late = {(o["user_id"], o["policy_id"]) for o in overdue["items"]}
    assert {(p["GROUP_ADMIN"].uid, pid), (p["GROUP_MEMBER"].uid, pid)} <= late
    assert all(o["overdue"] for o in overdue["items"])

    await ok(await wc.post("GROUP_MEMBER", f"policies/{pid}/acknowledge", {"version": 1}), 201)
    report = await ok(await wc.get("GROUP_ADMIN", f"groups/{group}/status"))
    assert report["group_id"] == group and report["name"]
    in_group = [o for o in report["overdue_items"] if o["policy_id"] == pid]
    assert [o["user_id"] for o in in_group] == [p["GROUP_ADMIN"].uid]
    assert report["members"] == 2 and report["overdue"] >= 1
    assert 0 < report["share_acknowledged"] < 1

    account = await status(wc)
    assert any(g["group_id"] == group for g in account["groups"])
    assert row(account, pid)["obligations"] == 2 and row(account, pid)["acknowledged"] == 1

    # Who may see status.
    await problem(await wc.get("GROUP_MEMBER", f"groups/{group}/status"), 403,
                  "status-forbidden")
    await problem(await wc.get("GROUP_ADMIN", f"groups/{other_group}/status"), 403)
    await problem(await wc.get("GROUP_ADMIN", "status"), 403)
    await problem(await wc.get("MEMBER", "status"), 403)
    await problem(await wc.get("VIEWER", f"groups/{group}/overdue"), 403)
    await ok(await wc.get("SOLUTION_ADMIN", f"groups/{other_group}/status"))
    await problem(await wc.get("ACCOUNT_ADMIN", f"groups/{'0' * 24}/status"), 404)
    foreign_group = p.tenants[0].groups[p.tenants[0].accounts[1]][0]
    await problem(await wc.get("ACCOUNT_ADMIN", f"groups/{foreign_group}/status"), 404)


async def test_who_may_write_policies_and_bad_input(wc: WeComplyApp) -> None:
    p = wc.personas
    other_group = p.tenants[0].groups[wc.account][1]
    await problem(await create(wc, "MEMBER"), 403)
    await problem(await create(wc, "VIEWER"), 403)
    await problem(await create(wc, "GROUP_ADMIN"), 403)  # account scope needs ACCOUNT_ADMIN
    await problem(await create(wc, "GROUP_ADMIN", scope="group", group_id=other_group), 403)
    await problem(await create(wc, "ACCOUNT_ADMIN", scope="group"), 422)  # no group_id
    await problem(await create(wc, "ACCOUNT_ADMIN", scope="group", group_id="0" * 24), 422)
    for scope in ("private", "solution", "global"):
        await problem(await create(wc, "SUPERADMIN", scope=scope), 422)
    for bad in ({"title": "", "body": "x"}, {"title": "x"}, {"title": "x", "body": "y",
                "owner_id": "me"}, {"title": "x", "body": "y" * 100_001},
                {"title": "x", "body": "y", "due_at": "next week"}):
        await problem(await wc.post("ACCOUNT_ADMIN", "policies", bad), 422)

    pid = (await ok(await create(wc, "ACCOUNT_ADMIN"), 201))["id"]
    # Readers who may not write get 404, as for an id outside the write filter.
    await problem(await wc.post("MEMBER", f"policies/{pid}/versions", {"body": "x"}), 404)
    await problem(await wc.patch("MEMBER", f"policies/{pid}", {"title": "Mine"}), 404)
    await problem(await wc.patch("ACCOUNT_ADMIN", f"policies/{pid}", {"title": None}), 422)
    await problem(await wc.patch("ACCOUNT_ADMIN", f"policies/{pid}",
                                 {"current_version": 7}), 422)
    await problem(await wc.post("MEMBER", f"policies/{pid}/acknowledge", {"version": 0}), 422)
    await problem(await wc.post("MEMBER", f"policies/{pid}/acknowledge", {}), 422)
    await problem(await wc.post("VIEWER", f"policies/{pid}/acknowledge", {"version": 1}), 403,
                  "not-in-audience")
    await problem(await wc.post("SOLUTION_ADMIN", f"policies/{pid}/acknowledge",
                                {"version": 1}), 403, "not-in-audience")
    huge = 10**30  # beyond what BSON can hold: refused, never a 500
    await problem(await wc.get("MEMBER", f"policies/{pid}/versions/{huge}"), 404)
    await problem(await wc.get("MEMBER", f"policies/{pid}/attestations?version={huge}"), 422)
    await problem(await wc.post("MEMBER", f"policies/{pid}/acknowledge", {"version": huge}),
                  422)
    await problem(await wc.get("MEMBER", "policies?scope=private"), 422)
    await problem(await wc.get("MEMBER", "policies?limit=1000"), 422)
    await problem(await wc.get("MEMBER", f"policies/{'0' * 24}"), 404)
    other = p.tenants[0].accounts[1]
    await problem(await wc.get(p[f"ADMIN:{other}"], f"policies/{pid}", account=other), 404)
    await problem(await wc.post(p[f"ADMIN:{other}"], f"policies/{pid}/acknowledge",
                                {"version": 1}, account=other), 404)


async def test_policy_list_pages_and_filters(wc: WeComplyApp) -> None:
    for i in range(3):
        await ok(await create(wc, "ACCOUNT_ADMIN", title=f"Paged {i}"), 201)
    first = await ok(await wc.get("MEMBER", "policies?limit=2"))
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = await ok(await wc.get("MEMBER", f"policies?limit=2&cursor={first['next_cursor']}"))
    assert not {x["id"] for x in first["items"]} & {x["id"] for x in second["items"]}
    groups = await ok(await wc.get("ACCOUNT_ADMIN", "policies?scope=group"))
    assert all(x["scope"] == "group" for x in groups["items"])
    await problem(await wc.get("MEMBER", "policies?cursor=garbage"), 422)


async def test_concurrent_publishes_never_share_a_version_number(wc: WeComplyApp) -> None:
    import asyncio

    pid = (await ok(await create(wc, "ACCOUNT_ADMIN", title="Raced"), 201))["id"]
    answers = await asyncio.gather(*[
        wc.post("ACCOUNT_ADMIN", f"policies/{pid}/versions", {"body": f"Text {i}"})
        for i in range(4)])
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {201, 409}
    for response in answers:
        if response.status_code == 409:
            await problem(response, 409, "concurrent-publish")
    listed = await ok(await wc.get("MEMBER", f"policies/{pid}/versions"))
    numbers = [v["version"] for v in listed["items"]]
    assert len(numbers) == len(set(numbers)) == statuses.count(201) + 1
