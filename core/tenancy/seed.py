"""Demo tenants and users for `make run` (idempotent: run it as often as you like)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import firebase_admin
from firebase_admin import auth as firebase_auth
from pymongo.asynchronous.database import AsyncDatabase

from core.tenancy.directory import set_membership
from core.tenancy.identity import normalize_email
from core.tenancy.models import Membership, MembershipKind, Role, utcnow

DEMO_PASSWORD = "synergyhub-demo"
DEMO_DOMAIN = "demo.synergyhub.dev"
ACCOUNT_ADMIN_EMAIL = f"account-admin@{DEMO_DOMAIN}"

# Fixed ids keep the demo stable across runs and in the README.
MEDICAL = "6500000000000000000000a1"
NORTHSIDE = "6500000000000000000000b1"
SOUTHSIDE = "6500000000000000000000b2"
CARDIOLOGY = "6500000000000000000000c1"
LEGAL = "6500000000000000000000a2"
HARBOR = "6500000000000000000000b3"


@dataclass(frozen=True)
class DemoUser:
    email: str
    description: str
    superadmin: bool = False
    memberships: tuple[Membership, ...] = ()


def _account(role: Role, account_id: str, solution_id: str = MEDICAL) -> Membership:
    return Membership(kind=MembershipKind.ACCOUNT, role=role, solution_id=solution_id,
                      account_id=account_id)


def _group(role: Role) -> Membership:
    return Membership(kind=MembershipKind.GROUP, role=role, solution_id=MEDICAL,
                      account_id=NORTHSIDE, group_id=CARDIOLOGY)


DEMO_USERS = (
    DemoUser(f"superadmin@{DEMO_DOMAIN}", "SUPERADMIN (platform)", superadmin=True),
    DemoUser(f"solution-admin@{DEMO_DOMAIN}", "SOLUTION_ADMIN of SynergyHub Medical",
             memberships=(Membership(kind=MembershipKind.SOLUTION, role=Role.SOLUTION_ADMIN,
                                     solution_id=MEDICAL),)),
    DemoUser(ACCOUNT_ADMIN_EMAIL, "ACCOUNT_ADMIN of Northside Hospital",
             memberships=(_account(Role.ACCOUNT_ADMIN, NORTHSIDE),)),
    DemoUser(f"member@{DEMO_DOMAIN}", "MEMBER of Northside Hospital",
             memberships=(_account(Role.MEMBER, NORTHSIDE),)),
    DemoUser(f"viewer@{DEMO_DOMAIN}", "VIEWER of Northside Hospital",
             memberships=(_account(Role.VIEWER, NORTHSIDE),)),
    DemoUser(f"group-admin@{DEMO_DOMAIN}", "GROUP_ADMIN of Cardiology Dept (MEMBER of Northside)",
             memberships=(_account(Role.MEMBER, NORTHSIDE), _group(Role.GROUP_ADMIN))),
    DemoUser(f"group-member@{DEMO_DOMAIN}", "MEMBER of Cardiology Dept (MEMBER of Northside)",
             memberships=(_account(Role.MEMBER, NORTHSIDE), _group(Role.MEMBER))),
    DemoUser(f"legal-admin@{DEMO_DOMAIN}", "ACCOUNT_ADMIN of Harbor Law (SynergyHub Legal)",
             memberships=(_account(Role.ACCOUNT_ADMIN, HARBOR, LEGAL),)),
    DemoUser(f"outsider@{DEMO_DOMAIN}", "signed in, no memberships"),
)


async def _upsert(db: AsyncDatabase[dict[str, Any]], collection: str, doc: dict[str, Any]) -> None:
    await db[collection].update_one(
        {"_id": doc["_id"]}, {"$setOnInsert": {**doc, "created_at": utcnow()}}, upsert=True
    )


async def seed_tenancy(db: AsyncDatabase[dict[str, Any]]) -> None:
    solutions: list[dict[str, Any]] = [
        {"_id": MEDICAL, "slug": "medical", "name": "SynergyHub Medical", "theme": "clinical",
         "enabled_plugins": ["live_assistant", "studio", "v2v", "wecomply"],
         "plugin_settings": {}, "domain": None, "status": "active"},
        {"_id": LEGAL, "slug": "legal", "name": "SynergyHub Legal", "theme": "corporate",
         "enabled_plugins": ["studio"], "plugin_settings": {}, "domain": None,
         "status": "active"},
    ]
    accounts: list[dict[str, Any]] = [
        {"_id": NORTHSIDE, "solution_id": MEDICAL, "slug": "northside",
         "name": "Northside Hospital", "status": "active"},
        {"_id": SOUTHSIDE, "solution_id": MEDICAL, "slug": "southside",
         "name": "Southside Clinic", "status": "active"},
        {"_id": HARBOR, "solution_id": LEGAL, "slug": "harbor", "name": "Harbor Law",
         "status": "active"},
    ]
    groups: list[dict[str, Any]] = [
        {"_id": CARDIOLOGY, "account_id": NORTHSIDE, "solution_id": MEDICAL,
         "name": "Cardiology Dept", "parent_id": None, "status": "active"},
    ]
    for doc in solutions:
        await _upsert(db, "solutions", doc)
    for doc in accounts:
        await _upsert(db, "accounts", doc)
    for doc in groups:
        await _upsert(db, "groups", doc)


def ensure_firebase_user(app: firebase_admin.App, email: str, password: str) -> str:
    """Create the user in Firebase (the emulator in development) if missing."""
    try:
        return str(firebase_auth.get_user_by_email(email, app=app).uid)
    except firebase_auth.UserNotFoundError:
        return str(firebase_auth.create_user(email=email, password=password,
                                             email_verified=True, app=app).uid)


async def seed_users(db: AsyncDatabase[dict[str, Any]], app: firebase_admin.App) -> dict[str, str]:
    uids: dict[str, str] = {}
    for user in DEMO_USERS:
        uid = await asyncio.to_thread(ensure_firebase_user, app, user.email, DEMO_PASSWORD)
        uids[user.email] = uid
        await db["users"].update_one(
            {"_id": uid},
            {"$setOnInsert": {"email": user.email, "email_normalized": normalize_email(user.email),
                              "memberships": [], "created_at": utcnow()},
             "$set": {"system_role": "SUPERADMIN" if user.superadmin else None}},
            upsert=True,
        )
        for membership in user.memberships:
            await set_membership(db, uid, membership)
    return uids


def emulator_id_token(auth_host: str, email: str, password: str = DEMO_PASSWORD) -> str:
    """Sign a demo user in at the Firebase Auth emulator and return their ID token."""
    import httpx

    response = httpx.post(
        f"http://{auth_host}/identitytoolkit.googleapis.com/v1/"
        "accounts:signInWithPassword?key=emulator",
        json={"email": email, "password": password, "returnSecureToken": True}, timeout=10)
    response.raise_for_status()
    return str(response.json()["idToken"])
