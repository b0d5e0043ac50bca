"""Injection and mass assignment over HTTP (ARCHITECTURE §3: input never becomes a filter key;
the kernel sets solution, account and owner from the request context, never from the body).

Every attack must answer a 4xx problem+json (never 2xx, never 5xx), and the stored data
must be unchanged afterwards. Each test collects all offending cases and fails once.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROBLEM = "application/problem+json"


def b64(raw: bytes | str) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Checker:
    def __init__(self, client: Any, persona: Any) -> None:
        self.client = client
        self.persona = persona
        self.failures: list[str] = []

    async def expect_4xx(self, case: str, method: str, path: str, body: Any = None,
                         *, allowed: tuple[int, ...] = ()) -> None:
        kwargs: dict[str, Any] = {"headers": self.persona.headers()}
        if body is not None:
            kwargs["json"] = body
        response = await getattr(self.client, method)(path, **kwargs)
        status = response.status_code
        ctype = response.headers.get("Content-Type", "")
        if status in allowed:
            return
        if not 400 <= status < 500:
            text = (await response.get_data(as_text=True))[:200]
            self.failures.append(f"{case}: expected 4xx, got {status} {text}")
        elif not ctype.startswith(PROBLEM):
            self.failures.append(f"{case}: {status} is not problem+json ({ctype})")

    def report(self) -> None:
        if self.failures:
            print("\n".join(self.failures))
        assert not self.failures, f"{len(self.failures)} failures:\n" + "\n".join(self.failures)


async def _get_json(client: Any, path: str, persona: Any) -> Any:
    response = await client.get(path, headers=persona.headers())
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


async def _target(client: Any, personas: Any, db: Any) -> tuple[str, str, Any, Any]:
    admin = personas["ACCOUNT_ADMIN"]
    docs = f"/api/v1/accounts/{personas.home_account}/documents"
    created = await client.post(docs, headers=admin.headers(), json={
        "title": "injection target", "content_type": "text/plain", "size": 5,
        "tags": ["keep"], "scope": "account"})
    assert created.status_code == 201
    doc_id = (await created.get_json())["id"]
    before = await _get_json(client, f"{docs}/{doc_id}", admin)
    stored = await db["documents"].find_one({"_id": doc_id})
    return docs, doc_id, before, stored


async def _patch_attacks(check: Checker, db: Any, path: str, doc_id: str, stored_before: Any,
                         attacks: dict[str, Any]) -> None:
    for case, body in attacks.items():
        await check.expect_4xx(f"patch: {case}", "patch", path, body)
        stored = await db["documents"].find_one({"_id": doc_id})
        if stored != stored_before:
            changed = {k: v for k, v in (stored or {}).items() if stored_before.get(k) != v}
            check.failures.append(f"patch: {case}: refused or not, it changed the stored "
                                  f"item: {changed}")
            # Put it back, or a poisoned item breaks every later read of this account.
            await db["documents"].replace_one({"_id": doc_id}, stored_before)


async def test_document_bodies(client: Any, personas: Any, synergyhub_services: Any) -> None:
    admin = personas["ACCOUNT_ADMIN"]
    other_account = personas.tenants[1].accounts[0]
    db = synergyhub_services.db
    docs, doc_id, before, stored_before = await _target(client, personas, db)
    path = f"{docs}/{doc_id}"
    count_before = await db["documents"].count_documents({})

    check = Checker(client, admin)
    base = {"title": "injected", "content_type": "text/plain", "size": 1, "tags": [],
            "scope": "account"}
    create_attacks: dict[str, dict[str, Any]] = {
        "$set key": {**base, "$set": {"scope": "global"}},
        "$where key": {**base, "$where": "1"},
        "dotted key": {**base, "tags.0": "x"},
        "operator as title": {**base, "title": {"$ne": 1}},
        "operator in tags": {**base, "tags": [{"$gt": ""}]},
        "operator as scope": {**base, "scope": {"$ne": "private"}},
        "operator as group_id": {**base, "scope": "group", "group_id": {"$ne": None}},
        "operator as size": {**base, "size": {"$gt": 0}},
        "unknown scope": {**base, "scope": "everything"},
        "extra field": {**base, "foo": "bar"},
        "array body": [base],  # type: ignore[dict-item]
    }
    for field, value in {
        "id": "65f000000000000000000000", "_id": "65f000000000000000000000",
        "account_id": other_account, "solution_id": personas.tenants[1].solution_id,
        "owner_id": personas["MEMBER"].uid, "read_keys": ["global"],
        "write_keys": ["w:global"], "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-01T00:00:00Z", "status": "ready", "role": "SUPERADMIN",
        "system_role": "SUPERADMIN", "memberships": [],
    }.items():
        create_attacks[f"tenant field {field}"] = {**base, field: value}
    for case, body in create_attacks.items():
        await check.expect_4xx(f"create: {case}", "post", docs, body)

    patch_attacks: dict[str, Any] = {
        "operator as title": {"title": {"$ne": 1}},
        "$set key": {"$set": {"title": "x"}},
        "$rename key": {"$rename": {"title": "x"}},
        "dotted key": {"title.x": "y"},
        "operator in tags": {"tags": [{"$gt": ""}]},
        "scope": {"scope": "global"},
        "group_id": {"group_id": personas.home_group},
        "read_keys": {"read_keys": ["global"]},
        "write_keys": {"write_keys": ["w:global"]},
        "account_id": {"account_id": other_account},
        "solution_id": {"solution_id": personas.tenants[1].solution_id},
        "owner_id": {"owner_id": personas["MEMBER"].uid},
        "id": {"id": "65f000000000000000000000"},
        "_id": {"_id": "65f000000000000000000000"},
        "created_at": {"created_at": "2020-01-01T00:00:00Z"},
        "status": {"status": "ready"},
        "extra field": {"title": "ok", "extra": 1},
    }
    await _patch_attacks(check, db, path, doc_id, stored_before, patch_attacks)

    after = await _get_json(client, path, admin)
    if after != before:
        check.failures.append(f"document changed by refused requests: {before} -> {after}")
    stored_after = await db["documents"].find_one({"_id": doc_id})
    if stored_after != stored_before:
        check.failures.append(f"stored document changed: {stored_before} -> {stored_after}")
    count_after = await db["documents"].count_documents({})
    if count_after != count_before:
        check.failures.append(f"refused creates stored {count_after - count_before} items")
    check.report()


async def test_patch_with_null_fields_is_refused(
    client: Any, personas: Any, synergyhub_services: Any
) -> None:
    db = synergyhub_services.db
    docs, doc_id, _, stored_before = await _target(client, personas, db)
    check = Checker(client, personas["ACCOUNT_ADMIN"])
    await _patch_attacks(check, db, f"{docs}/{doc_id}", doc_id, stored_before,
                         {"null title": {"title": None}, "null tags": {"tags": None}})
    check.report()


async def test_list_query_and_cursor(client: Any, personas: Any) -> None:
    member = personas["MEMBER"]
    docs = f"/api/v1/accounts/{personas.home_account}/documents"
    check = Checker(client, member)
    # Plain unknown parameters may be ignored, but must never act as filters.
    baseline = await _get_json(client, f"{docs}?limit=100", member)
    for query in ("read_keys=global", "account_id=x", "owner_id=x", "write_keys=w:global"):
        response = await client.get(f"{docs}?limit=100&{query}", headers=member.headers())
        if response.status_code == 200:
            if (await response.get_json())["items"] != baseline["items"]:
                check.failures.append(f"list ?{query}: an unknown parameter changed the result")
        else:
            await check.expect_4xx(f"list ?{query}", "get", f"{docs}?limit=100&{query}")
    for query in ("sort=read_keys", "sort=-write_keys", "sort=$natural", "sort=owner_id",
                  "limit=0", "limit=1000", "limit=abc", "scope=everything"):
        await check.expect_4xx(f"list ?{query}", "get", f"{docs}?{query}")

    cursors = {
        "garbage": "garbage!!",
        "not base64 json": b64(b"\xff\xfe\x00"),
        "json number": b64("5"),
        "one element": b64('["a"]'),
        "three elements": b64('[1, "a", 2]'),
        "operator sort value": b64('[{"$gt": ""}, "x"]'),
        "operator id": b64('[1, {"$ne": null}]'),
        "bad $dt": b64('[{"$dt": "nope"}, "x"]'),
        "non-string $dt": b64('[{"$dt": 5}, "x"]'),
        "list sort value": b64('[[1], "x"]'),
        "too long": "A" * 600,
    }
    for name, cursor in cursors.items():
        await check.expect_4xx(f"cursor {name}", "get", f"{docs}?cursor={cursor}")

    # A value that looks like an operator is only ever a value.
    created = await client.post(docs, headers=member.headers(), json={
        "title": "literal tag", "content_type": "text/plain", "size": 1, "tags": ["$ne"],
        "scope": "private"})
    literal_id = (await created.get_json())["id"] if created.status_code == 201 else None
    for value in ("%24ne", "%7B%22%24ne%22%3A%22%22%7D"):
        response = await client.get(f"{docs}?tag={value}", headers=member.headers())
        if response.status_code == 200:
            items = (await response.get_json())["items"]
            wanted = "$ne" if value == "%24ne" else '{"$ne":""}'
            if not all(wanted in item["tags"] for item in items):
                check.failures.append(f"?tag={value} acted as an operator")
            if wanted == "$ne" and literal_id and literal_id not in {i["id"] for i in items}:
                check.failures.append("?tag=$ne did not find the item tagged '$ne'")
        else:
            await check.expect_4xx(f"list ?tag={value}", "get", f"{docs}?tag={value}")

    # Ids and account ids that are operators or JSON are just missing resources.
    for path in (f"{docs}/%24ne", f"{docs}/%7B%22%24ne%22%3A1%7D",
                 "/api/v1/accounts/%24where/documents",
                 "/api/v1/accounts/%7B%22%24ne%22%3A1%7D/documents"):
        await check.expect_4xx(f"path {path}", "get", path)
    check.report()


async def test_list_rejects_operator_and_dotted_query_keys(client: Any, personas: Any) -> None:
    docs = f"/api/v1/accounts/{personas.home_account}/documents"
    check = Checker(client, personas["MEMBER"])
    for query in ("tag[$ne]=x", "tag.$ne=x", "$where=1", "tags[$gt]=", "scope[$ne]=private",
                  "group_id[$ne]=", "tag.x=1"):
        await check.expect_4xx(f"list ?{query}", "get", f"{docs}?{query}")
    check.report()


async def test_cursor_with_unrepresentable_value_is_422(client: Any, personas: Any) -> None:
    docs = f"/api/v1/accounts/{personas.home_account}/documents"
    check = Checker(client, personas["MEMBER"])
    for sort, value in (("size", "100000000000000000000000000000"), ("size", "1e999"),
                        ("title", "100000000000000000000000000000"),
                        ("-_id", "-100000000000000000000000000000")):
        cursor = b64(f'[{value}, "65f000000000000000000000"]')
        # Either refused (422) or answered, never a 500.
        await check.expect_4xx(f"cursor sort={sort} value={value[:12]}…", "get",
                               f"{docs}?sort={sort}&cursor={cursor}", allowed=(200,))
    check.report()


async def test_group_member_and_invitation_bodies(client: Any, personas: Any) -> None:
    admin = personas["ACCOUNT_ADMIN"]
    base = f"/api/v1/accounts/{personas.home_account}"
    group_path = f"{base}/groups/{personas.home_group}"
    group_before = await _get_json(client, group_path, admin)
    members_before = await _get_json(client, f"{base}/members", admin)
    other_account = personas.tenants[1].accounts[0]
    member_uid = personas["MEMBER"].uid
    check = Checker(client, admin)

    cases: list[tuple[str, str, str, Any]] = [
        ("put member: operator role", "put", f"{base}/members/{member_uid}",
         {"role": {"$ne": ""}}),
        ("put member: SUPERADMIN role", "put", f"{base}/members/{member_uid}",
         {"role": "SUPERADMIN"}),
        ("put member: SOLUTION_ADMIN role", "put", f"{base}/members/{member_uid}",
         {"role": "SOLUTION_ADMIN"}),
        ("put member: GROUP_ADMIN as account role", "put", f"{base}/members/{member_uid}",
         {"role": "GROUP_ADMIN"}),
        ("put member: system_role", "put", f"{base}/members/{member_uid}",
         {"role": "MEMBER", "system_role": "SUPERADMIN"}),
        ("put member: account_id", "put", f"{base}/members/{member_uid}",
         {"role": "MEMBER", "account_id": other_account}),
        ("put member: $set", "put", f"{base}/members/{member_uid}",
         {"role": "MEMBER", "$set": {"system_role": "SUPERADMIN"}}),
        ("put member: operator uid", "put", f"{base}/members/%7B%22%24ne%22%3A1%7D",
         {"role": "MEMBER"}),
        ("put group member: ACCOUNT_ADMIN role", "put",
         f"{group_path}/members/{member_uid}", {"role": "ACCOUNT_ADMIN"}),
        ("create group: operator name", "post", f"{base}/groups", {"name": {"$gt": ""}}),
        ("create group: account_id", "post", f"{base}/groups",
         {"name": "x", "account_id": other_account}),
        ("create group: status", "post", f"{base}/groups", {"name": "x", "status": "archived"}),
        ("create group: id", "post", f"{base}/groups",
         {"name": "x", "id": "65f000000000000000000000"}),
        ("create group: $set", "post", f"{base}/groups", {"name": "x", "$set": {"a": 1}}),
        ("create group: operator parent", "post", f"{base}/groups",
         {"name": "x", "parent_id": {"$ne": None}}),
        ("patch group: status", "patch", group_path, {"status": "archived"}),
        ("patch group: account_id", "patch", group_path, {"account_id": other_account}),
        ("patch group: dotted", "patch", group_path, {"name.first": "x"}),
        ("patch group: operator name", "patch", group_path, {"name": {"$set": "x"}}),
        ("patch group: own parent", "patch", group_path, {"parent_id": personas.home_group}),
        ("invite: operator email", "post", f"{base}/invitations",
         {"email": {"$ne": ""}, "role": "MEMBER"}),
        ("invite: account_id", "post", f"{base}/invitations",
         {"email": "x@example.test", "role": "MEMBER", "account_id": other_account}),
        ("invite: SOLUTION_ADMIN role", "post", f"{base}/invitations",
         {"email": "x@example.test", "role": "SOLUTION_ADMIN"}),
        ("invite: status accepted", "post", f"{base}/invitations",
         {"email": "x@example.test", "role": "MEMBER", "status": "accepted"}),
    ]
    for case, method, path, body in cases:
        await check.expect_4xx(case, method, path, body)

    if await _get_json(client, group_path, admin) != group_before:
        check.failures.append("home group changed by refused requests")
    if await _get_json(client, f"{base}/members", admin) != members_before:
        check.failures.append("account members changed by refused requests")
    me = await _get_json(client, "/api/v1/me", personas["MEMBER"])
    if me["system_role"] is not None:
        check.failures.append("MEMBER gained a system role")
    check.report()


async def test_json_roundtrip_of_refusals_has_no_echo(client: Any, personas: Any) -> None:
    """Problem details never echo the attacker's input back (no reflected payloads)."""
    admin = personas["ACCOUNT_ADMIN"]
    docs = f"/api/v1/accounts/{personas.home_account}/documents"
    payload = "<script>alert(1)</script>"
    response = await client.post(docs, headers=admin.headers(), json={
        "title": {"$where": payload}, "content_type": "text/plain", "size": 1})
    assert 400 <= response.status_code < 500
    assert payload not in json.dumps(await response.get_json())
