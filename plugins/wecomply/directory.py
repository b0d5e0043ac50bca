"""Who is in this account or group, from the kernel directory service.

Compliance status needs the account's people and its groups: directory data,
not scoped resources. The kernel's ``Directory`` answers it for the request's
account only; WeComply adapts the result to its own ``Member`` type.
"""

from __future__ import annotations

from typing import Any

from core.tenancy.models import AccountContext
from plugins.wecomply.compliance import Member

MAX_MEMBERS = 10_000


async def members(directory: Any, ctx: AccountContext) -> list[Member]:
    """Every user holding a role in the context's account (any status)."""
    found = await directory.members(ctx.account.id, limit=MAX_MEMBERS)
    return [Member(uid=m.uid, email=m.email, memberships=m.memberships) for m in found]


async def active_group(directory: Any, ctx: AccountContext, group_id: str) -> Any:
    """The group if it is an active group of the context's account."""
    return await directory.active_group(ctx.account.id, group_id)
