"""A seeded tenancy for tests: 2 Solutions × 2 Accounts × 2 Groups, a persona per role.

Users are real Firebase Auth emulator users with real ID tokens; their roles
are written to the database the way the API would.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from core.tenancy.directory import set_membership
from core.tenancy.identity import normalize_email
from core.tenancy.models import Membership, MembershipKind, Role, new_id, utcnow

PASSWORD = "persona-password-1"


@dataclass
class Persona:
    name: str
    uid: str = ""
    email: str = ""
    token: str = ""

    def headers(self, **extra: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(extra)
        return headers


@dataclass
class Tenant:
    solution_id: str
    solution_slug: str
    accounts: list[str] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Personas:
    """Home tenancy is solutions[0] / accounts[0] / groups[0]; the rest is "elsewhere"."""

    tenants: list[Tenant]
    by_role: dict[str, Persona]
    auth_host: str

    @property
    def home_solution(self) -> str:
        return self.tenants[0].solution_id

    @property
    def home_account(self) -> str:
        return self.tenants[0].accounts[0]

    @property
    def home_group(self) -> str:
        return self.tenants[0].groups[self.home_account][0]

    def __getitem__(self, role: str) -> Persona:
        return self.by_role[role]

    async def new_user(self, label: str) -> Persona:
        return await sign_up(self.auth_host, f"{label}-{uuid.uuid4().hex[:8]}@example.test")


ROLES = (
    "SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN", "MEMBER", "VIEWER",
    "GROUP_ADMIN", "GROUP_MEMBER", "OUTSIDER", "ANONYMOUS",
)


async def sign_up(auth_host: str, email: str) -> Persona:
    """Create an emulator user and sign it in; returns a persona with a real ID token."""
    base = f"http://{auth_host}/identitytoolkit.googleapis.com/v1"
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{base}/accounts:signUp?key=test",
                                   json={"email": email, "password": PASSWORD,
                                         "returnSecureToken": True})
        response.raise_for_status()
        body = response.json()
    return Persona(name=email, uid=body["localId"], email=email, token=body["idToken"])


async def sign_in(auth_host: str, email: str) -> str:
    base = f"http://{auth_host}/identitytoolkit.googleapis.com/v1"
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{base}/accounts:signInWithPassword?key=test",
                                   json={"email": email, "password": PASSWORD,
                                         "returnSecureToken": True})
        response.raise_for_status()
        return str(response.json()["idToken"])


async def _insert(db: Any, collection: str, doc: dict[str, Any]) -> str:
    doc = {"_id": new_id(), "status": "active", "created_at": utcnow(), **doc}
    await db[collection].insert_one(doc)
    return str(doc["_id"])


async def seed_personas(db: Any, auth_host: str, *, enabled_plugins: list[str] | None = None
                        ) -> Personas:
    run = uuid.uuid4().hex[:6]
    tenants: list[Tenant] = []
    for s in range(2):
        slug = f"sol{s}-{run}"
        solution_id = await _insert(db, "solutions", {
            "slug": slug, "name": f"Solution {s}", "theme": "clinical",
            "enabled_plugins": (enabled_plugins if enabled_plugins is not None
                                else ["studio", "v2v", "wecomply", "live_assistant", "vision"])
            if s == 0 else ["studio"],
            "plugin_settings": {}, "domain": None})
        tenant = Tenant(solution_id, slug)
        for a in range(2):
            account_id = await _insert(db, "accounts", {
                "solution_id": solution_id, "slug": f"acc{a}", "name": f"Account {s}.{a}"})
            tenant.accounts.append(account_id)
            tenant.groups[account_id] = [
                await _insert(db, "groups", {"account_id": account_id, "solution_id": solution_id,
                                             "name": f"Group {s}.{a}.{g}", "parent_id": None})
                for g in range(2)
            ]
        tenants.append(tenant)

    home_s, home_a = tenants[0].solution_id, tenants[0].accounts[0]
    home_g = tenants[0].groups[home_a][0]

    def account(role: Role) -> Membership:
        return Membership(kind=MembershipKind.ACCOUNT, role=role, solution_id=home_s,
                          account_id=home_a)

    def group(role: Role) -> Membership:
        return Membership(kind=MembershipKind.GROUP, role=role, solution_id=home_s,
                          account_id=home_a, group_id=home_g)

    plan: dict[str, tuple[bool, list[Membership]]] = {
        "SUPERADMIN": (True, []),
        "SOLUTION_ADMIN": (False, [Membership(kind=MembershipKind.SOLUTION,
                                              role=Role.SOLUTION_ADMIN, solution_id=home_s)]),
        "ACCOUNT_ADMIN": (False, [account(Role.ACCOUNT_ADMIN)]),
        "MEMBER": (False, [account(Role.MEMBER)]),
        "VIEWER": (False, [account(Role.VIEWER)]),
        "GROUP_ADMIN": (False, [account(Role.MEMBER), group(Role.GROUP_ADMIN)]),
        "GROUP_MEMBER": (False, [account(Role.MEMBER), group(Role.MEMBER)]),
        "OUTSIDER": (False, []),
    }
    # Every other account gets an admin of its own, so tests can put data there.
    for tenant in tenants:
        for account_id in tenant.accounts:
            if account_id == home_a:
                continue
            plan[f"ADMIN:{account_id}"] = (False, [Membership(
                kind=MembershipKind.ACCOUNT, role=Role.ACCOUNT_ADMIN,
                solution_id=tenant.solution_id, account_id=account_id)])

    by_role: dict[str, Persona] = {"ANONYMOUS": Persona("ANONYMOUS")}
    for name, (superadmin, memberships) in plan.items():
        label = name.lower().replace(":", "-").replace("_", "-")[:40]
        persona = await sign_up(auth_host, f"{label}-{run}@example.test")
        persona.name = name
        await db["users"].insert_one({
            "_id": persona.uid, "email": persona.email,
            "email_normalized": normalize_email(persona.email),
            "system_role": "SUPERADMIN" if superadmin else None,
            "memberships": [], "created_at": utcnow()})
        for membership in memberships:
            await set_membership(db, persona.uid, membership)
        by_role[name] = persona
    return Personas(tenants=tenants, by_role=by_role, auth_host=auth_host)
