"""Tenancy conformance over HTTP: every persona × every scope × every operation.

The expected outcome of each case is written out below from the rules table of
ARCHITECTURE §3 (it deliberately does not call ``can_read``/``can_write``), so the
suite checks the implementation against the specification. Each test collects
every mismatch and fails once, printing all of them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from core.tenancy.identity import normalize_email
from core.tenancy.models import Scope, new_id, utcnow
from core.tenancy.rules import resource_read_keys, resource_write_keys
from core.testing.conformance import (
    HOME_ACCESS,
    READERS,
    RESOURCES,
    Res,
    expected_create,
    gate,
    may_read,
    may_write,
    owner_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROBLEM = "application/problem+json"
DOCS = "/api/v1/accounts/{account}/documents"

# The specification (ARCHITECTURE §3) is written out once, in the conformance
# checker partners run on their plugins; this suite applies it to the kernel's own
# documents, groups and members.

# Every persona with access can own a private item here: this suite seeds a
# VIEWER's private item directly in the database (a VIEWER cannot create one).
OWNERS = frozenset(HOME_ACCESS)

# Group and member management: account-level structure (creating/archiving groups,
# account members) is for the account's administrators; a GROUP_ADMIN manages its group.
ACCOUNT_MANAGERS = frozenset({"SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN"})
HOME_GROUP_MANAGERS = ACCOUNT_MANAGERS | {"GROUP_ADMIN"}


def expected(persona: str, op: str, res: Res) -> int:
    early = gate(persona)
    if early is not None:
        return early
    if op == "get":
        return 200 if may_read(persona, res) else 404
    if op == "update":
        return 200 if may_write(persona, res) else 404  # outside the write filter: 404
    if op == "delete":
        return 204 if may_write(persona, res) else 404
    raise AssertionError(op)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def strip(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k != "request_id"}
    return body


class World:
    def __init__(self, client: Any, personas: Any, db: Any) -> None:
        self.client = client
        self.p = personas
        self.db = db
        self.home = personas.home_account
        self.home_solution = personas.home_solution
        self.sibling = personas.tenants[0].accounts[1]
        self.other = personas.tenants[1].accounts[0]
        self.accounts = {"home": self.home, "sibling": self.sibling, "other": self.other}
        self.groups = {
            "home": personas.home_group,
            "home2": personas.tenants[0].groups[self.home][1],
            "sibling": personas.tenants[0].groups[self.sibling][0],
        }
        self.names = [n for n in personas.by_role if not n.startswith("ADMIN:")]
        self.names += [f"ADMIN:{a}" for a in (self.sibling, self.other,
                                              personas.tenants[1].accounts[1])]
        self.shared: dict[tuple[str, str], str] = {}   # (resource, owner persona) -> id
        self.created: list[str] = []

    def persona(self, name: str) -> Any:
        if name == "ADMIN:sibling":
            name = f"ADMIN:{self.sibling}"
        elif name == "ADMIN:other":
            name = f"ADMIN:{self.other}"
        return self.p[name]

    async def call(self, method: str, path: str, persona: str,
                   json: Any = None) -> tuple[int, Any, str]:
        kwargs: dict[str, Any] = {"headers": self.persona(persona).headers()}
        if json is not None:
            kwargs["json"] = json
        response = await getattr(self.client, method)(path, **kwargs)
        ctype = response.headers.get("Content-Type", "")
        body = await response.get_json() if "json" in ctype else None
        return response.status_code, body, ctype

    async def create(self, res: Res, owner: str, tag: str = "shared") -> str:
        account = self.accounts[res.where]
        if res.scope == "private" and owner == "VIEWER":
            # A VIEWER cannot create; give it an item the way a former MEMBER would own one.
            return await self.raw_private(account, "VIEWER")
        body: dict[str, Any] = {"title": f"conf {res.name} {tag}", "content_type": "text/plain",
                                "size": 1, "tags": ["conformance"], "scope": res.scope}
        if res.group:
            body["group_id"] = self.groups[res.group]
        status, doc, _ = await self.call("post", DOCS.format(account=account), owner, body)
        assert status == 201, f"seeding {res.name} as {owner}: {status} {doc}"
        self.created.append(doc["id"])
        return str(doc["id"])

    async def raw_private(self, account: str, owner: str) -> str:
        uid = self.persona(owner).uid
        ids = {"solution_id": self.home_solution, "account_id": account, "group_id": None,
               "owner_id": uid}
        doc_id = new_id()
        now = utcnow()
        await self.db["documents"].insert_one({
            "_id": doc_id, **ids, "scope": "private", "title": "conf private-own raw",
            "content_type": "text/plain", "size": 1, "tags": ["conformance"],
            "status": "pending", "created_at": now, "updated_at": now,
            "read_keys": resource_read_keys(Scope.PRIVATE, **ids),
            "write_keys": resource_write_keys(Scope.PRIVATE, **ids)})
        self.created.append(doc_id)
        return doc_id

    async def shared_id(self, res: Res, persona: str) -> str | None:
        owner = owner_of(res, persona)
        if owner not in OWNERS and res.creator in ("SELF", "OTHER"):
            return None
        key = (res.name, owner)
        if key not in self.shared:
            self.shared[key] = await self.create(res, owner)
        return self.shared[key]

    async def list_all(self, persona: str) -> tuple[int, list[dict[str, Any]]]:
        items: list[dict[str, Any]] = []
        cursor = None
        for _ in range(200):
            path = DOCS.format(account=self.home) + "?limit=100"
            if cursor:
                path += f"&cursor={cursor}"
            status, body, _ = await self.call("get", path, persona)
            if status != 200:
                return status, items
            items.extend(body["items"])
            cursor = body["next_cursor"]
            if not cursor:
                break
        return 200, items


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(synergyhub_app: Any, personas: Any, synergyhub_services: Any
                ) -> AsyncIterator[World]:
    w = World(synergyhub_app.test_client(), personas, synergyhub_services.db)
    for res in RESOURCES:
        for persona in w.names:
            await w.shared_id(res, persona)
    yield w
    await synergyhub_services.db["documents"].delete_many({"_id": {"$in": w.created}})


def check_problem(mismatches: list[str], case: str, status: int, ctype: str,
                  body: Any) -> None:
    if status >= 400 and (not ctype.startswith(PROBLEM) or not isinstance(body, dict)
                          or body.get("status") != status):
        mismatches.append(f"{case}: {status} is not problem+json ({ctype})")


def report(mismatches: list[str]) -> None:
    if mismatches:
        print("\n".join(mismatches))
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches)


# --------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------


async def test_documents_list(world: World) -> None:
    w = world
    mismatches: list[str] = []
    for persona in w.names:
        status, items = await w.list_all(persona)
        early = gate(persona)
        if early is not None:
            if status != early:
                mismatches.append(f"{persona} list: expected {early}, got {status}")
            continue
        if status != 200:
            mismatches.append(f"{persona} list: expected 200, got {status}")
            continue
        seen = {item["id"] for item in items}
        for res in RESOURCES:
            doc_id = await w.shared_id(res, persona)
            if doc_id is None:
                continue
            want = may_read(persona, res)
            if (doc_id in seen) != want:
                mismatches.append(f"{persona} list {res.name}: expected "
                                  f"{'present' if want else 'absent'}")
        uid = w.persona(persona).uid
        readable_groups = {w.groups["home"]} if persona in ("GROUP_ADMIN", "GROUP_MEMBER") else (
            set(w.p.tenants[0].groups[w.home]) if persona in READERS["group:home2"] else set())
        for item in items:
            in_context = (item["scope"] == "global" or item["account_id"] == w.home
                          or (item["scope"] == "solution"
                              and item["solution_id"] == w.home_solution))
            if not in_context:
                mismatches.append(f"{persona} list leaks {item['scope']} item {item['id']} "
                                  f"of account {item['account_id']}")
            if item["scope"] == "private" and item["owner_id"] != uid:
                mismatches.append(f"{persona} list leaks another user's private item "
                                  f"{item['id']}")
            if item["scope"] == "group" and item["group_id"] not in readable_groups:
                mismatches.append(f"{persona} list leaks group item {item['id']} "
                                  f"of group {item['group_id']}")
            if "read_keys" in item or "write_keys" in item:
                mismatches.append(f"{persona} list exposes grant keys")
    report(mismatches)


async def _missing_bodies(w: World, persona: str) -> dict[str, Any]:
    missing = DOCS.format(account=w.home) + f"/{new_id()}"
    return {
        "get": strip((await w.call("get", missing, persona))[1]),
        "update": strip((await w.call("patch", missing, persona, {"title": "x"}))[1]),
        "delete": strip((await w.call("delete", missing, persona))[1]),
    }


async def test_documents_get_and_update(world: World) -> None:
    w = world
    mismatches: list[str] = []
    for persona in w.names:
        missing = await _missing_bodies(w, persona)
        for res in RESOURCES:
            doc_id = await w.shared_id(res, persona)
            if doc_id is None:
                continue
            path = DOCS.format(account=w.home) + f"/{doc_id}"
            case = f"{persona} get {res.name}"
            status, body, ctype = await w.call("get", path, persona)
            want = expected(persona, "get", res)
            if status != want:
                mismatches.append(f"{case}: expected {want}, got {status}")
            check_problem(mismatches, case, status, ctype, body)
            if status == want == 404 and strip(body) != missing["get"]:
                mismatches.append(f"{case}: 404 differs from a missing id: {body}")

            case = f"{persona} update {res.name}"
            title = f"updated by {persona}"
            status, body, ctype = await w.call("patch", path, persona, {"title": title})
            want = expected(persona, "update", res)
            if status != want:
                mismatches.append(f"{case}: expected {want}, got {status}")
            check_problem(mismatches, case, status, ctype, body)
            if status == 200 and body.get("title") != title:
                mismatches.append(f"{case}: title not changed in the answer")
            if status == want == 404 and strip(body) != missing["update"]:
                mismatches.append(f"{case}: 404 differs from a missing id: {body}")
            if want != 200:
                stored = await w.db["documents"].find_one({"_id": doc_id})
                if stored is None or stored["title"] == title:
                    mismatches.append(f"{case}: the stored item changed although refused")
    report(mismatches)


async def test_documents_delete(world: World) -> None:
    w = world
    mismatches: list[str] = []
    for persona in w.names:
        missing = await _missing_bodies(w, persona)
        for res in RESOURCES:
            owner = owner_of(res, persona)
            if res.creator in ("SELF", "OTHER") and owner not in OWNERS:
                continue
            doc_id = await w.create(res, owner, tag=f"delete by {persona}")
            case = f"{persona} delete {res.name}"
            path = DOCS.format(account=w.home) + f"/{doc_id}"
            status, body, ctype = await w.call("delete", path, persona)
            want = expected(persona, "delete", res)
            if status != want:
                mismatches.append(f"{case}: expected {want}, got {status}")
            check_problem(mismatches, case, status, ctype, body)
            if status == want == 404 and strip(body) != missing["delete"]:
                mismatches.append(f"{case}: 404 differs from a missing id: {body}")
            still_there = await w.db["documents"].find_one({"_id": doc_id}) is not None
            if still_there != (status != 204):
                mismatches.append(f"{case}: answered {status} but stored={still_there}")
    report(mismatches)


CREATE_SCOPES = ("global", "solution", "account", "group:home", "group:home2", "private")


async def test_documents_create(world: World) -> None:
    w = world
    mismatches: list[str] = []
    for persona in w.names:
        for key in CREATE_SCOPES:
            scope, _, group = key.partition(":")
            body: dict[str, Any] = {"title": f"conf create {key} {persona}",
                                    "content_type": "text/plain", "size": 3, "scope": scope}
            if group:
                body["group_id"] = w.groups[group]
            case = f"{persona} create {key}"
            status, doc, ctype = await w.call("post", DOCS.format(account=w.home), persona, body)
            want = expected_create(persona, key)
            if status != want:
                mismatches.append(f"{case}: expected {want}, got {status}")
            check_problem(mismatches, case, status, ctype, doc)
            if status == 201:
                w.created.append(doc["id"])
                uid = w.persona(persona).uid
                fields = (doc["account_id"], doc["solution_id"], doc["owner_id"], doc["scope"])
                if fields != (w.home, w.home_solution, uid, scope):
                    mismatches.append(f"{case}: tenant fields not stamped from context: {fields}")
                if group and doc.get("group_id") != w.groups[group]:
                    mismatches.append(f"{case}: group_id not kept")
            elif await w.db["documents"].count_documents({"title": body["title"]}):
                mismatches.append(f"{case}: refused but stored")
    # A group of another account is never a place to write.
    for persona in sorted(HOME_ACCESS):
        body = {"title": f"conf foreign group {persona}", "content_type": "text/plain",
                "size": 1, "scope": "group", "group_id": w.groups["sibling"]}
        status, doc, _ = await w.call("post", DOCS.format(account=w.home), persona, body)
        if status not in (403, 404, 422):
            mismatches.append(f"{persona} create group in sibling account's group: got {status}")
        if status == 201:
            w.created.append(doc["id"])
    report(mismatches)


async def test_cross_account_by_id(world: World) -> None:
    """Home items through other accounts' paths, by their admins and SUPERADMIN."""
    w = world
    mismatches: list[str] = []
    home_items = [r for r in RESOURCES if r.where == "home" and r.creator != "SELF"]
    for account_key in ("sibling", "other"):
        account = w.accounts[account_key]
        same_solution = account_key == "sibling"
        for persona in (f"ADMIN:{account}", "SUPERADMIN"):
            for res in home_items:
                doc_id = await w.shared_id(res, "SUPERADMIN" if res.creator == "OTHER" else
                                           persona)
                if doc_id is None:
                    continue
                visible = res.scope == "global" or (res.scope == "solution" and same_solution)
                path = DOCS.format(account=account) + f"/{doc_id}"
                status, _, _ = await w.call("get", path, persona)
                if status != (200 if visible else 404):
                    mismatches.append(f"{persona} get home {res.name} via {account_key}: "
                                      f"expected {200 if visible else 404}, got {status}")
                writes = visible and (persona == "SUPERADMIN")
                status, _, _ = await w.call("patch", path, persona, {"title": "cross"})
                if status != (200 if writes else 404):
                    mismatches.append(f"{persona} update home {res.name} via {account_key}: "
                                      f"expected {200 if writes else 404}, got {status}")
    report(mismatches)


# --------------------------------------------------------------------------
# Groups and members
# --------------------------------------------------------------------------


async def _fresh_user(w: World, label: str) -> str:
    uid = f"conf-{label}-{uuid.uuid4().hex[:10]}"
    email = f"{uid}@example.test"
    await w.db["users"].insert_one({"_id": uid, "email": email,
                                    "email_normalized": normalize_email(email),
                                    "system_role": None, "memberships": [],
                                    "created_at": utcnow()})
    return uid


async def test_groups_and_members(world: World) -> None:
    w = world
    mismatches: list[str] = []
    base = f"/api/v1/accounts/{w.home}"
    home_group = w.groups["home"]

    def expect(persona: str, allowed: frozenset[str], ok: int) -> int:
        early = gate(persona)
        if early is not None:
            return early
        return ok if persona in allowed else 403

    async def run(case: str, method: str, path: str, persona: str, want: int,
                  body: Any = None) -> int:
        status, answer, ctype = await w.call(method, path, persona, body)
        if status != want:
            mismatches.append(f"{case}: expected {want}, got {status} {answer}")
        check_problem(mismatches, case, status, ctype, answer)
        return status

    for persona in w.names:
        # create group
        status, body, _ = await w.call("post", f"{base}/groups", persona,
                                       {"name": f"conf {persona}"})
        want = expect(persona, ACCOUNT_MANAGERS, 201)
        if status != want:
            mismatches.append(f"{persona} create group: expected {want}, got {status}")
        if status == 201:
            await w.call("delete", f"{base}/groups/{body['id']}", "ACCOUNT_ADMIN")

        # patch the home group (name unchanged) and the second home group
        await run(f"{persona} patch home group", "patch", f"{base}/groups/{home_group}",
                  persona, expect(persona, HOME_GROUP_MANAGERS, 200), {"name": "Group 0.0.0"})
        await run(f"{persona} patch home group 2", "patch",
                  f"{base}/groups/{w.groups['home2']}", persona,
                  expect(persona, ACCOUNT_MANAGERS, 200), {"name": "Group 0.0.1"})

        # archive a fresh group
        status, fresh, _ = await w.call("post", f"{base}/groups", "ACCOUNT_ADMIN",
                                        {"name": f"conf archive {persona}"})
        assert status == 201
        await run(f"{persona} archive group", "delete", f"{base}/groups/{fresh['id']}",
                  persona, expect(persona, ACCOUNT_MANAGERS, 204))

        # account members
        target = await _fresh_user(w, "acc")
        await run(f"{persona} put account member", "put", f"{base}/members/{target}",
                  persona, expect(persona, ACCOUNT_MANAGERS, 204), {"role": "MEMBER"})
        target = await _fresh_user(w, "accdel")
        assert (await w.call("put", f"{base}/members/{target}", "ACCOUNT_ADMIN",
                             {"role": "MEMBER"}))[0] == 204
        await run(f"{persona} delete account member", "delete", f"{base}/members/{target}",
                  persona, expect(persona, ACCOUNT_MANAGERS, 204))

        # group members (the target is a member of the account already)
        target = await _fresh_user(w, "grp")
        assert (await w.call("put", f"{base}/members/{target}", "ACCOUNT_ADMIN",
                             {"role": "MEMBER"}))[0] == 204
        await run(f"{persona} put home group member", "put",
                  f"{base}/groups/{home_group}/members/{target}", persona,
                  expect(persona, HOME_GROUP_MANAGERS, 204), {"role": "MEMBER"})
        await run(f"{persona} put home group 2 member", "put",
                  f"{base}/groups/{w.groups['home2']}/members/{target}", persona,
                  expect(persona, ACCOUNT_MANAGERS, 204), {"role": "MEMBER"})
        target = await _fresh_user(w, "grpdel")
        assert (await w.call("put", f"{base}/members/{target}", "ACCOUNT_ADMIN",
                             {"role": "MEMBER"}))[0] == 204
        assert (await w.call("put", f"{base}/groups/{home_group}/members/{target}",
                             "ACCOUNT_ADMIN", {"role": "MEMBER"}))[0] == 204
        await run(f"{persona} delete home group member", "delete",
                  f"{base}/groups/{home_group}/members/{target}", persona,
                  expect(persona, HOME_GROUP_MANAGERS, 204))

    # A group of another account is not reachable through the home account.
    foreign = w.groups["sibling"]
    for persona in ("SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN"):
        await run(f"{persona} patch sibling group via home", "patch",
                  f"{base}/groups/{foreign}", persona, 404, {"name": "hijack"})
    report(mismatches)
