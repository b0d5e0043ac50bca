"""Read-only look-ups in the kernel directory (users' memberships, groups).

Compliance status needs "who is in this account / group", which is directory
data, not a scoped resource, and the kernel exposes no service method for it
yet (its own ``GET /accounts/{id}/members`` view runs the same query). This
adapter is the one place WeComply reads it, through the database handle the
kernel injects (``services.db``) — no driver import — and only for the account
of the request context. Replace it with a kernel ``Directory.members(...)`` call
when one exists.
"""

from __future__ import annotations

from typing import Any

from core.tenancy.models import AccountContext, Membership
from plugins.wecomply.compliance import Member

MAX_MEMBERS = 10_000


async def members(database: Any, ctx: AccountContext) -> list[Member]:
    """Every user holding a role in the context's account (any status)."""
    account_id = ctx.account.id
    cursor = database["users"].find(
        {"memberships.account_id": account_id},
        projection={"email": 1, "memberships": 1},
    ).limit(MAX_MEMBERS)
    out: list[Member] = []
    for doc in await cursor.to_list():
        memberships = tuple(
            Membership.model_validate(m) for m in doc.get("memberships", [])
            if m.get("account_id") == account_id
        )
        out.append(Member(uid=str(doc["_id"]), email=doc.get("email"), memberships=memberships))
    return out


async def active_group(database: Any, ctx: AccountContext, group_id: str) -> dict[str, Any] | None:
    """The group if it is an active group of the context's account."""
    if not isinstance(group_id, str) or len(group_id) > 64:
        return None
    found: dict[str, Any] | None = await database["groups"].find_one(
        {"_id": group_id, "account_id": ctx.account.id, "status": "active"},
        projection={"name": 1},
    )
    return found
