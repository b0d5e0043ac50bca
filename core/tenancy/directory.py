"""Users, Solutions, Accounts and Groups in MongoDB (the tenancy directory).

Memberships live inside the user document so that one read per request loads
the whole principal. Accounts and Solutions change rarely and are read on
every request, so they are cached per process for a few seconds: an
enablement or archive change is visible on every instance within that TTL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from core.kernel.cache import CACHE_SECONDS, MISSING, TTLCache
from core.kernel.errors import Conflict
from core.tenancy.identity import VerifiedToken, normalize_email
from core.tenancy.models import (
    Account,
    Group,
    Membership,
    MembershipKind,
    Principal,
    Role,
    Solution,
    Status,
    SystemRole,
    utcnow,
)


def doc_to(model: Any, doc: dict[str, Any]) -> Any:
    data = dict(doc)
    data["id"] = data.pop("_id")
    return model.model_validate(data)


class Directory:
    """Read side of the tenancy hierarchy used on every request."""

    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = database
        self._accounts: TTLCache[str, tuple[Account, Solution] | None] = TTLCache(CACHE_SECONDS)
        self._hosts: TTLCache[str, str | None] = TTLCache(CACHE_SECONDS)

    async def create_indexes(self) -> None:
        await self.db["users"].create_index([("email_normalized", ASCENDING)], unique=True,
                                            sparse=True)
        await self.db["users"].create_index([("memberships.account_id", ASCENDING)])
        await self.db["solutions"].create_index([("slug", ASCENDING)], unique=True)
        await self.db["solutions"].create_index([("domain", ASCENDING)], sparse=True)
        await self.db["accounts"].create_index([("solution_id", ASCENDING)])
        await self.db["accounts"].create_index(
            [("solution_id", ASCENDING), ("slug", ASCENDING)], unique=True
        )
        await self.db["groups"].create_index([("account_id", ASCENDING)])
        await self.db["invitations"].create_index([("email_normalized", ASCENDING)])

    def invalidate(self) -> None:
        self._accounts.clear()
        self._hosts.clear()

    # -- principal ---------------------------------------------------------

    async def principal_for(self, verified: VerifiedToken) -> Principal:
        """Load the caller in one round trip; create the user on first sign-in."""
        doc = await self.db["users"].find_one({"_id": verified.uid})
        if doc is None:
            doc = await self._first_sign_in(verified)
        return principal_from(doc)

    async def _first_sign_in(self, verified: VerifiedToken) -> dict[str, Any]:
        normalized = normalize_email(verified.email) if verified.email else None
        doc: dict[str, Any] = {
            "_id": verified.uid,
            "email": verified.email,
            "system_role": None,
            "memberships": [],
            "created_at": utcnow(),
        }
        if normalized:
            doc["email_normalized"] = normalized
        try:
            await self.db["users"].insert_one(doc)
        except DuplicateKeyError:
            existing = await self.db["users"].find_one({"_id": verified.uid})
            if existing is not None:
                return existing
            raise Conflict(
                "Another user already signed in with an email that normalises to the same "
                "address; ask an administrator to resolve the look-alike.",
                type_slug="email-collision",
            ) from None
        if normalized:
            await self._accept_invitations(verified.uid, normalized)
        return await self.db["users"].find_one({"_id": verified.uid}) or doc

    async def _accept_invitations(self, uid: str, normalized_email: str) -> None:
        invitations = await self.db["invitations"].find(
            {"email_normalized": normalized_email}
        ).to_list()
        for invitation in invitations:
            if invitation.get("status") != "pending":
                continue
            memberships = [
                Membership(
                    kind=MembershipKind.ACCOUNT,
                    role=Role(invitation["role"]),
                    solution_id=invitation["solution_id"],
                    account_id=invitation["account_id"],
                )
            ]
            if invitation.get("group_id"):
                memberships.append(
                    Membership(
                        kind=MembershipKind.GROUP,
                        role=Role(invitation.get("group_role") or "MEMBER"),
                        solution_id=invitation["solution_id"],
                        account_id=invitation["account_id"],
                        group_id=invitation["group_id"],
                    )
                )
            for membership in memberships:
                await set_membership(self.db, uid, membership)
            await self.db["invitations"].update_one(
                {"_id": invitation["_id"]},
                {"$set": {"status": "accepted", "accepted_by": uid, "accepted_at": utcnow()}},
            )

    # -- people and groups of one account (read-only, for services and plugins) --

    async def members(self, account_id: str, *, limit: int = 10_000) -> list[AccountMember]:
        """Every user holding a role in the account, with their roles there."""
        users = await self.db["users"].find(
            {"memberships.account_id": account_id}, projection={"email": 1, "memberships": 1}
        ).sort([("_id", 1)]).limit(limit).to_list()
        return [
            AccountMember(
                uid=str(user["_id"]),
                email=user.get("email"),
                memberships=tuple(
                    Membership.model_validate(m) for m in user.get("memberships", [])
                    if m.get("account_id") == account_id
                ),
            )
            for user in users
        ]

    async def active_group(self, account_id: str, group_id: str) -> Group | None:
        """The group when it is an active group of that account."""
        if not isinstance(group_id, str) or len(group_id) > 64:
            return None
        doc = await self.db["groups"].find_one(
            {"_id": group_id, "account_id": account_id, "status": Status.ACTIVE.value}
        )
        return doc_to(Group, doc) if doc else None

    # -- hierarchy ---------------------------------------------------------

    async def account_with_solution(self, account_id: str) -> tuple[Account, Solution] | None:
        cached = self._accounts.get(account_id)
        if cached is not MISSING:
            return cached
        account_doc = await self.db["accounts"].find_one({"_id": account_id})
        solution_doc = (
            await self.db["solutions"].find_one({"_id": account_doc["solution_id"]})
            if account_doc
            else None
        )
        if account_doc is None or solution_doc is None:
            self._accounts.put(account_id, None)
            return None
        found = (doc_to(Account, account_doc), doc_to(Solution, solution_doc))
        self._accounts.put(account_id, found)
        return found

    async def solution_for_host(self, host: str, header_value: str | None) -> str | None:
        """A custom domain or the ``X-Solution`` header (development) names a Solution."""
        key = f"{host}|{header_value or ''}"
        cached = self._hosts.get(key)
        if cached is not MISSING:
            return cached
        solution_id: str | None = None
        if header_value:
            doc = await self.db["solutions"].find_one({"slug": header_value[:100]})
            solution_id = doc["_id"] if doc else "unknown"
        else:
            hostname = host.split(":")[0].lower()
            doc = await self.db["solutions"].find_one({"domain": hostname})
            solution_id = doc["_id"] if doc else None
        self._hosts.put(key, solution_id)
        return solution_id


@dataclass(frozen=True)
class AccountMember:
    uid: str
    email: str | None
    memberships: tuple[Membership, ...]


def principal_from(doc: dict[str, Any]) -> Principal:
    return Principal(
        uid=doc["_id"],
        email=doc.get("email"),
        system_role=SystemRole(doc["system_role"]) if doc.get("system_role") else None,
        memberships=tuple(Membership.model_validate(m) for m in doc.get("memberships", [])),
    )


def _same_target(membership: Membership) -> dict[str, Any]:
    field = {
        MembershipKind.SOLUTION: "solution_id",
        MembershipKind.ACCOUNT: "account_id",
        MembershipKind.GROUP: "group_id",
    }[membership.kind]
    return {"kind": membership.kind.value, field: membership.target_id}


async def set_membership(
    database: AsyncDatabase[dict[str, Any]], uid: str, membership: Membership
) -> None:
    """Replace the user's role on that target (one role per target)."""
    await database["users"].update_one(
        {"_id": uid}, {"$pull": {"memberships": _same_target(membership)}}
    )
    await database["users"].update_one(
        {"_id": uid}, {"$push": {"memberships": membership.model_dump(mode="json")}}
    )


async def remove_membership(
    database: AsyncDatabase[dict[str, Any]], uid: str, membership: Membership
) -> None:
    await database["users"].update_one(
        {"_id": uid}, {"$pull": {"memberships": _same_target(membership)}}
    )


async def set_group_membership_status(
    database: AsyncDatabase[dict[str, Any]], group_id: str, status: Status
) -> None:
    """Archiving a group retires its memberships' grant keys (and restoring revives them)."""
    users = await database["users"].find({"memberships.group_id": group_id}).to_list()
    for user in users:
        memberships = [
            {**m, "status": status.value} if m.get("group_id") == group_id else m
            for m in user.get("memberships", [])
        ]
        await database["users"].update_one(
            {"_id": user["_id"]}, {"$set": {"memberships": memberships}}
        )
