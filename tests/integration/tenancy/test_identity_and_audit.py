"""Identity (revocation, disabled users, roles from the database, invitations) and the
tamper-evident audit log, over HTTP against the real Auth emulator and database."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from firebase_admin import auth as firebase_auth

from core.tenancy.identity import normalize_email
from core.tenancy.models import utcnow
from core.testing.tenancy import sign_in, sign_up

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROBLEM = "application/problem+json"
WINDOW_LIMIT = 5.0  # revocation_check_seconds=2 in the test settings, plus slack


def firebase_app(services: Any) -> Any:
    app = getattr(services.tenancy.verifier, "app", None)
    assert app is not None, "the token verifier exposes no firebase_admin app"
    return app


async def poll_until_401(client: Any, persona: Any, limit: float = WINDOW_LIMIT
                         ) -> tuple[float, dict[str, Any] | None]:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        response = await client.get("/api/v1/me", headers=persona.headers())
        if response.status_code == 401:
            assert response.headers["Content-Type"].startswith(PROBLEM)
            return time.monotonic() - start, await response.get_json()
        assert response.status_code == 200, await response.get_data(as_text=True)
        await asyncio.sleep(0.25)
    return time.monotonic() - start, None


async def new_member(client: Any, personas: Any, label: str, role: str = "MEMBER") -> Any:
    user = await personas.new_user(label)
    response = await client.get("/api/v1/me", headers=user.headers())  # first sign-in
    assert response.status_code == 200, await response.get_data(as_text=True)
    response = await client.put(
        f"/api/v1/accounts/{personas.home_account}/members/{user.uid}",
        headers=personas["ACCOUNT_ADMIN"].headers(), json={"role": role})
    assert response.status_code == 204, await response.get_data(as_text=True)
    return user


async def raw_user(db: Any, label: str) -> str:
    uid = f"{label}-{uuid.uuid4().hex[:10]}"
    email = f"{uid}@example.test"
    await db["users"].insert_one({"_id": uid, "email": email,
                                  "email_normalized": normalize_email(email),
                                  "system_role": None, "memberships": [],
                                  "created_at": utcnow()})
    return uid


# --------------------------------------------------------------------------
# Identity
# --------------------------------------------------------------------------


async def test_revoked_user_is_refused_within_the_window(
    client: Any, personas: Any, synergyhub_services: Any
) -> None:
    user = await new_member(client, personas, "revoked")
    docs = f"/api/v1/accounts/{personas.home_account}/documents"
    assert (await client.get(docs, headers=user.headers())).status_code == 200
    # Revocation is second-granular (validSince vs the token's auth_time), as in Firebase.
    await asyncio.sleep(1.2)
    app = firebase_app(synergyhub_services)
    await asyncio.to_thread(firebase_auth.revoke_refresh_tokens, user.uid, app=app)
    elapsed, problem = await poll_until_401(client, user)
    assert problem is not None, f"revoked token still accepted after {elapsed:.1f}s"
    assert problem["status"] == 401
    assert problem["type"].endswith("/token-revoked"), problem
    # Every route refuses it, not only /me.
    assert (await client.get(docs, headers=user.headers())).status_code == 401
    # Signing in again gives a token that works.
    user.token = await sign_in(personas.auth_host, user.email)
    assert (await client.get(docs, headers=user.headers())).status_code == 200


async def test_disabled_user_is_refused_within_the_window(
    client: Any, personas: Any, synergyhub_services: Any
) -> None:
    user = await new_member(client, personas, "disabled")
    app = firebase_app(synergyhub_services)
    await asyncio.to_thread(firebase_auth.update_user, user.uid, disabled=True, app=app)
    elapsed, problem = await poll_until_401(client, user)
    assert problem is not None, f"disabled user still accepted after {elapsed:.1f}s"
    assert problem["type"].endswith("/user-disabled"), problem
    docs = f"/api/v1/accounts/{personas.home_account}/documents"
    assert (await client.get(docs, headers=user.headers())).status_code == 401


async def test_deleted_user_is_refused_within_the_window(
    client: Any, personas: Any, synergyhub_services: Any
) -> None:
    user = await new_member(client, personas, "deleted")
    app = firebase_app(synergyhub_services)
    await asyncio.to_thread(firebase_auth.delete_user, user.uid, app=app)
    elapsed, problem = await poll_until_401(client, user)
    assert problem is not None, f"deleted user still accepted after {elapsed:.1f}s"


async def test_role_changes_take_effect_at_once(client: Any, personas: Any) -> None:
    """Roles live in the database, not in token claims (ARCHITECTURE §3)."""
    user = await new_member(client, personas, "demoted")
    admin = personas["ACCOUNT_ADMIN"].headers()
    base = f"/api/v1/accounts/{personas.home_account}"
    created = await client.post(f"{base}/documents", headers=user.headers(), json={
        "title": "mine", "content_type": "text/plain", "size": 1, "scope": "private"})
    assert created.status_code == 201
    doc = f"{base}/documents/{(await created.get_json())['id']}"

    # MEMBER → VIEWER: still reads its own item, writes nothing.
    assert (await client.put(f"{base}/members/{user.uid}", headers=admin,
                             json={"role": "VIEWER"})).status_code == 204
    assert (await client.get(doc, headers=user.headers())).status_code == 200
    assert (await client.patch(doc, headers=user.headers(),
                               json={"title": "still mine?"})).status_code == 404
    assert (await client.post(f"{base}/documents", headers=user.headers(), json={
        "title": "new", "content_type": "text/plain", "size": 1,
        "scope": "private"})).status_code == 403

    # Removed from the account: the account is out of reach at once.
    assert (await client.delete(f"{base}/members/{user.uid}", headers=admin)).status_code == 204
    assert (await client.get(doc, headers=user.headers())).status_code == 404
    assert (await client.get(f"{base}/documents", headers=user.headers())).status_code == 404


def _look_alike(text: str) -> str:
    """Full-width, upper-case spelling: the same address after NFKC + case folding."""
    out = []
    for ch in text:
        if "a" <= ch <= "z":
            out.append(chr(ord(ch.upper()) - 0x21 + 0xFF01))
        else:
            out.append(ch.upper())
    return "".join(out)


async def test_invitation_matches_normalised_email(client: Any, personas: Any) -> None:
    plain = f"invitee-{uuid.uuid4().hex[:8]}@example.test"
    local, _, domain = plain.partition("@")
    variant = f"{_look_alike(local)}@{domain.upper()}"
    assert variant != plain and normalize_email(variant) == normalize_email(plain)
    response = await client.post(
        f"/api/v1/accounts/{personas.home_account}/invitations",
        headers=personas["ACCOUNT_ADMIN"].headers(),
        json={"email": variant, "role": "MEMBER", "group_id": personas.home_group})
    assert response.status_code == 201, await response.get_data(as_text=True)
    invitation = await response.get_json()
    assert invitation["status"] == "pending" and invitation["role"] == "MEMBER"

    invitee = await sign_up(personas.auth_host, plain)
    response = await client.get("/api/v1/me", headers=invitee.headers())
    assert response.status_code == 200, await response.get_data(as_text=True)
    memberships = (await response.get_json())["memberships"]
    account_roles = [m for m in memberships
                     if m["kind"] == "account" and m["account_id"] == personas.home_account]
    assert [m["role"] for m in account_roles] == ["MEMBER"], memberships
    assert any(m["kind"] == "group" and m["group_id"] == personas.home_group
               for m in memberships), memberships
    # And the membership works at once.
    docs = f"/api/v1/accounts/{personas.home_account}/documents"
    assert (await client.get(docs, headers=invitee.headers())).status_code == 200


async def test_granting_above_own_role_is_forbidden(
    client: Any, personas: Any, synergyhub_services: Any
) -> None:
    db = synergyhub_services.db
    target = await raw_user(db, "target")
    base = f"/api/v1/accounts/{personas.home_account}"
    cases = [
        ("GROUP_ADMIN", "put", f"{base}/members/{target}", {"role": "ACCOUNT_ADMIN"}),
        ("GROUP_ADMIN", "put", f"{base}/members/{target}", {"role": "MEMBER"}),
        ("MEMBER", "put", f"{base}/groups/{personas.home_group}/members/{target}",
         {"role": "GROUP_ADMIN"}),
        ("GROUP_ADMIN", "post", f"{base}/invitations",
         {"email": f"{target}@example.test", "role": "ACCOUNT_ADMIN"}),
        ("ACCOUNT_ADMIN", "put", f"/api/v1/solutions/{personas.home_solution}/members/{target}",
         {"role": "SOLUTION_ADMIN"}),
        ("VIEWER", "put", f"{base}/members/{target}", {"role": "MEMBER"}),
    ]
    failures = []
    for persona, method, path, body in cases:
        response = await getattr(client, method)(path, headers=personas[persona].headers(),
                                                 json=body)
        if response.status_code != 403:
            failures.append(f"{persona} {method} {path} {body}: {response.status_code}")
    stored = await db["users"].find_one({"_id": target})
    assert stored["memberships"] == [] and stored["system_role"] is None
    assert not failures, failures


# --------------------------------------------------------------------------
# Account administration and audit (in an account of their own)
# --------------------------------------------------------------------------


async def _fresh_account(client: Any, personas: Any, label: str) -> str:
    response = await client.post(
        f"/api/v1/solutions/{personas.home_solution}/accounts",
        headers=personas["SOLUTION_ADMIN"].headers(),
        json={"slug": f"{label}-{uuid.uuid4().hex[:8]}", "name": f"{label} account"})
    assert response.status_code == 201, await response.get_data(as_text=True)
    return str((await response.get_json())["id"])


async def test_last_account_admin_cannot_be_demoted(
    client: Any, personas: Any, synergyhub_services: Any
) -> None:
    account = await _fresh_account(client, personas, "lastadmin")
    sol = personas["SOLUTION_ADMIN"].headers()
    base = f"/api/v1/accounts/{account}/members"
    admin = await personas.new_user("lastadmin")
    assert (await client.get("/api/v1/me", headers=admin.headers())).status_code == 200
    assert (await client.put(f"{base}/{admin.uid}", headers=sol,
                             json={"role": "ACCOUNT_ADMIN"})).status_code == 204

    for who, headers in (("SOLUTION_ADMIN", sol), ("the admin itself", admin.headers())):
        response = await client.put(f"{base}/{admin.uid}", headers=headers,
                                    json={"role": "MEMBER"})
        assert response.status_code == 409, (who, await response.get_data(as_text=True))
        assert response.headers["Content-Type"].startswith(PROBLEM)
        response = await client.delete(f"{base}/{admin.uid}", headers=headers)
        assert response.status_code == 409, (who, await response.get_data(as_text=True))

    second = await raw_user(synergyhub_services.db, "second")
    assert (await client.put(f"{base}/{second}", headers=sol,
                             json={"role": "ACCOUNT_ADMIN"})).status_code == 204
    # With two admins, one may step down; then the other is the last one.
    assert (await client.put(f"{base}/{admin.uid}", headers=admin.headers(),
                             json={"role": "MEMBER"})).status_code == 204
    assert (await client.put(f"{base}/{second}", headers=sol,
                             json={"role": "VIEWER"})).status_code == 409


async def test_audit_chain_verifies_and_detects_tampering(
    client: Any, personas: Any, synergyhub_services: Any
) -> None:
    account = await _fresh_account(client, personas, "audit")
    sol = personas["SOLUTION_ADMIN"].headers()
    base = f"/api/v1/accounts/{account}"
    for i in range(3):
        response = await client.post(f"{base}/groups", headers=sol, json={"name": f"g{i}"})
        assert response.status_code == 201
    group = (await response.get_json())["id"]
    assert (await client.patch(f"{base}/groups/{group}", headers=sol,
                               json={"name": "renamed"})).status_code == 200
    member = await raw_user(synergyhub_services.db, "audited")
    assert (await client.put(f"{base}/members/{member}", headers=sol,
                             json={"role": "MEMBER"})).status_code == 204
    assert (await client.patch(base, headers=sol, json={"name": "Audit Co"})).status_code == 200

    response = await client.get(f"{base}/activity/verify", headers=sol)
    assert response.status_code == 200
    result = await response.get_json()
    assert result["ok"] is True and result["broken_at_seq"] is None, result
    assert result["checked"] >= 7, result  # account.created + 6 actions

    # The activity log is for the account's administrators.
    assert (await client.get(f"{base}/activity/verify",
                             headers=personas["MEMBER"].headers())).status_code == 404

    response = await client.get(f"{base}/activity?limit=500", headers=sol)
    assert response.status_code == 200
    events = (await response.get_json())["items"]
    assert [e["seq"] for e in events] == list(range(1, result["checked"] + 1))

    # Alter one stored event: verify names exactly that one.
    target = events[3]
    changed = await synergyhub_services.db["audit_events"].update_one(
        {"chain": account, "seq": target["seq"]}, {"$set": {"details": {"forged": True}}})
    assert changed.modified_count == 1
    response = await client.get(f"{base}/activity/verify", headers=sol)
    broken = await response.get_json()
    assert broken["ok"] is False, broken
    assert broken["broken_at_seq"] == target["seq"], broken
    assert broken["broken_event_id"] == target["id"], broken

    # Removing an event is detected too, at the event after the gap.
    fresh = await _fresh_account(client, personas, "audit2")
    for i in range(3):
        assert (await client.post(f"/api/v1/accounts/{fresh}/groups", headers=sol,
                                  json={"name": f"g{i}"})).status_code == 201
    await synergyhub_services.db["audit_events"].delete_one({"chain": fresh, "seq": 2})
    response = await client.get(f"/api/v1/accounts/{fresh}/activity/verify", headers=sol)
    broken = await response.get_json()
    assert broken["ok"] is False and broken["broken_at_seq"] == 3, broken


async def test_audit_export_is_ndjson(client: Any, personas: Any) -> None:
    account = await _fresh_account(client, personas, "export")
    sol = personas["SOLUTION_ADMIN"].headers()
    base = f"/api/v1/accounts/{account}"
    for i in range(3):
        assert (await client.post(f"{base}/groups", headers=sol,
                                  json={"name": f"g{i}"})).status_code == 201
    group = (await (await client.get(f"{base}/groups", headers=sol)).get_json())["items"][0]
    assert (await client.patch(f"{base}/groups/{group['id']}", headers=sol,
                               json={"name": "renamed"})).status_code == 200
    result = await (await client.get(f"{base}/activity/verify", headers=sol)).get_json()
    assert result["ok"] is True

    try:
        response = await client.get(f"{base}/activity/export", headers=sol)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/x-ndjson")
        text = await response.get_data(as_text=True)
    except RuntimeError as error:  # raised while streaming the body
        pytest.fail(f"the NDJSON export fails while streaming its body: {error!r}")
    lines = [line for line in text.split("\n") if line]
    events = [json.loads(line) for line in lines]
    assert all(isinstance(e, dict) for e in events)
    assert len(events) == result["checked"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    actions = [e["action"] for e in events]
    assert actions[0] == "account.created" and "group.updated" in actions
    assert all(e.get("hash") and e.get("prev_hash") for e in events)
