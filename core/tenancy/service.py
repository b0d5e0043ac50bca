"""Tenancy use cases: who may manage Solutions, Accounts, Groups and members.

Functions take what they need as keyword arguments (the principal, the
database, the audit log); they never read the Quart request.
"""

from __future__ import annotations

import re
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from core.kernel.errors import Conflict, Forbidden, NotFound, Unprocessable
from core.tenancy.audit import AuditLog
from core.tenancy.directory import (
    doc_to,
    remove_membership,
    set_group_membership_status,
    set_membership,
)
from core.tenancy.identity import normalize_email
from core.tenancy.models import (
    ROLE_RANK,
    ROLES_BY_KIND,
    Account,
    AccountContext,
    Group,
    Membership,
    MembershipKind,
    Principal,
    Role,
    Solution,
    Status,
    new_id,
    utcnow,
)

Database = AsyncDatabase[dict[str, Any]]
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def require_writable(principal: Principal) -> None:
    if principal.read_only:
        raise Forbidden("This impersonation session is read-only.", type_slug="read-only")


def effective_rank(principal: Principal, ctx: AccountContext, group_id: str | None = None) -> int:
    """The highest role rank the principal holds over this account (or group)."""
    if principal.is_superadmin or principal.is_solution_admin(ctx.solution.id):
        return ROLE_RANK[Role.SOLUTION_ADMIN] + (1 if principal.is_superadmin else 0)
    rank = ROLE_RANK.get(principal.account_role(ctx.account.id) or Role.VIEWER, 0)
    if principal.account_role(ctx.account.id) is None:
        rank = 0
    if group_id and principal.group_role(group_id) is Role.GROUP_ADMIN:
        rank = max(rank, ROLE_RANK[Role.GROUP_ADMIN])
    return rank


def require_rank(principal: Principal, ctx: AccountContext, role: Role,
                 group_id: str | None = None) -> None:
    require_writable(principal)
    if effective_rank(principal, ctx, group_id) < ROLE_RANK[role]:
        raise Forbidden(f"This needs {role.value} or above.")


def require_solution_admin(principal: Principal, solution_id: str) -> None:
    require_writable(principal)
    if not (principal.is_superadmin or principal.is_solution_admin(solution_id)):
        raise Forbidden("This needs SOLUTION_ADMIN of this Solution.")


def check_slug(slug: str) -> str:
    if not SLUG.match(slug):
        raise Unprocessable(
            "slug must be 1-63 lowercase letters, digits or hyphens, not starting or ending "
            "with a hyphen."
        )
    return slug


# --------------------------------------------------------------------------
# Solutions
# --------------------------------------------------------------------------


async def visible_solution(db: Database, principal: Principal, solution_id: str) -> Solution:
    doc = await db["solutions"].find_one({"_id": solution_id[:64]})
    if doc is None:
        raise NotFound("No such Solution.")
    solution: Solution = doc_to(Solution, doc)
    if principal.is_superadmin:
        return solution
    visible = principal.is_solution_admin(solution.id) or principal.member_of_solution(solution.id)
    if not visible or solution.status is Status.ARCHIVED:
        raise NotFound("No such Solution.")
    return solution


async def create_solution(
    db: Database, audit: AuditLog, principal: Principal, data: dict[str, Any]
) -> Solution:
    require_writable(principal)
    if not principal.is_superadmin:
        raise Forbidden("Only a SUPERADMIN creates Solutions.")
    solution = Solution(id=new_id(), slug=check_slug(data["slug"]), name=data["name"],
                        theme=data.get("theme") or "clinical", domain=data.get("domain"))
    doc = solution.model_dump(mode="python")
    doc["_id"] = doc.pop("id")
    try:
        await db["solutions"].insert_one(doc)
    except DuplicateKeyError:
        raise Conflict(f"A Solution with slug {solution.slug!r} exists.") from None
    await audit.record("solution.created", actor=principal, solution_id=solution.id,
                       target=solution.id, details={"slug": solution.slug})
    return solution


async def list_solutions(db: Database, principal: Principal) -> list[Solution]:
    if principal.is_superadmin:
        query: dict[str, Any] = {}
    else:
        ids = sorted({m.solution_id for m in principal.active()})
        query = {"_id": {"$in": ids}, "status": Status.ACTIVE.value}
    docs = await db["solutions"].find(query).sort([("_id", 1)]).limit(500).to_list()
    return [doc_to(Solution, d) for d in docs]


async def update_solution(
    db: Database, audit: AuditLog, principal: Principal, solution_id: str, changes: dict[str, Any]
) -> Solution:
    solution = await visible_solution(db, principal, solution_id)
    require_solution_admin(principal, solution.id)
    if changes:
        await db["solutions"].update_one({"_id": solution.id}, {"$set": changes})
        await audit.record("solution.updated", actor=principal, solution_id=solution.id,
                           target=solution.id, details={"fields": sorted(changes)})
    return await visible_solution(db, principal, solution_id)


async def set_solution_admin(
    db: Database, audit: AuditLog, principal: Principal, solution_id: str, uid: str,
    *, grant: bool,
) -> None:
    solution = await visible_solution(db, principal, solution_id)
    require_solution_admin(principal, solution.id)
    await _require_user(db, uid)
    membership = Membership(kind=MembershipKind.SOLUTION, role=Role.SOLUTION_ADMIN,
                            solution_id=solution.id)
    if grant:
        await set_membership(db, uid, membership)
    else:
        await remove_membership(db, uid, membership)
    await audit.record("solution.member." + ("granted" if grant else "removed"), actor=principal,
                       solution_id=solution.id, target=uid,
                       details={"role": Role.SOLUTION_ADMIN.value})


# --------------------------------------------------------------------------
# Accounts
# --------------------------------------------------------------------------


async def create_account(
    db: Database, audit: AuditLog, principal: Principal, solution_id: str, data: dict[str, Any]
) -> Account:
    solution = await visible_solution(db, principal, solution_id)
    require_solution_admin(principal, solution.id)
    account = Account(id=new_id(), solution_id=solution.id, slug=check_slug(data["slug"]),
                      name=data["name"])
    doc = account.model_dump(mode="python")
    doc["_id"] = doc.pop("id")
    try:
        await db["accounts"].insert_one(doc)
    except DuplicateKeyError:
        raise Conflict(f"An account with slug {account.slug!r} exists in this Solution.") from None
    await audit.record("account.created", actor=principal, account_id=account.id,
                       solution_id=solution.id, target=account.id,
                       details={"slug": account.slug})
    return account


async def list_accounts(
    db: Database, principal: Principal, solution_id: str, *, include_archived: bool
) -> list[Account]:
    solution = await visible_solution(db, principal, solution_id)
    query: dict[str, Any] = {"solution_id": solution.id}
    if not (principal.is_superadmin and include_archived):
        query["status"] = Status.ACTIVE.value
    if not (principal.is_superadmin or principal.is_solution_admin(solution.id)):
        query["_id"] = {"$in": sorted(
            m.account_id for m in principal.active()
            if m.kind is MembershipKind.ACCOUNT and m.account_id
        )}
    docs = await db["accounts"].find(query).sort([("_id", 1)]).limit(1000).to_list()
    return [doc_to(Account, d) for d in docs]


async def archive_account(
    db: Database, audit: AuditLog, ctx: AccountContext, *, archived: bool
) -> None:
    principal = ctx.principal
    if archived:
        require_solution_admin(principal, ctx.solution.id)
    else:
        require_writable(principal)
        if not principal.is_superadmin:
            raise NotFound("No such account.")
    status = Status.ARCHIVED if archived else Status.ACTIVE
    await db["accounts"].update_one({"_id": ctx.account.id}, {"$set": {"status": status.value}})
    await audit.record("account." + ("archived" if archived else "restored"), actor=principal,
                       account_id=ctx.account.id, solution_id=ctx.solution.id,
                       target=ctx.account.id)


# --------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------


async def get_group(db: Database, ctx: AccountContext, group_id: str) -> Group:
    doc = await db["groups"].find_one({"_id": group_id[:64]})
    if doc is None or doc["account_id"] != ctx.account.id:
        raise NotFound("No such group.")
    group: Group = doc_to(Group, doc)
    if group.status is Status.ARCHIVED and not ctx.principal.is_superadmin:
        raise NotFound("No such group.")
    return group


async def list_groups(db: Database, ctx: AccountContext) -> list[Group]:
    query: dict[str, Any] = {"account_id": ctx.account.id}
    docs = await db["groups"].find(query).sort([("_id", 1)]).limit(1000).to_list()
    groups = [doc_to(Group, d) for d in docs]
    if not ctx.principal.is_superadmin:
        groups = [g for g in groups if g.status is Status.ACTIVE]
    return groups


async def create_group(
    db: Database, audit: AuditLog, ctx: AccountContext, data: dict[str, Any]
) -> Group:
    require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
    parent_id = data.get("parent_id")
    if parent_id:
        await get_group(db, ctx, parent_id)
    group = Group(id=new_id(), account_id=ctx.account.id, solution_id=ctx.solution.id,
                  name=data["name"], parent_id=parent_id)
    doc = group.model_dump(mode="python")
    doc["_id"] = doc.pop("id")
    await db["groups"].insert_one(doc)
    await audit.record("group.created", actor=ctx.principal, account_id=ctx.account.id,
                       solution_id=ctx.solution.id, target=group.id)
    return group


async def update_group(
    db: Database, audit: AuditLog, ctx: AccountContext, group_id: str, changes: dict[str, Any]
) -> Group:
    group = await get_group(db, ctx, group_id)
    require_rank(ctx.principal, ctx, Role.GROUP_ADMIN, group.id)
    if changes.get("parent_id"):
        if changes["parent_id"] == group.id:
            raise Unprocessable("A group cannot be its own parent.")
        await get_group(db, ctx, changes["parent_id"])
    if changes:
        await db["groups"].update_one({"_id": group.id}, {"$set": changes})
        await audit.record("group.updated", actor=ctx.principal, account_id=ctx.account.id,
                           solution_id=ctx.solution.id, target=group.id,
                           details={"fields": sorted(changes)})
    return await get_group(db, ctx, group.id)


async def archive_group(db: Database, audit: AuditLog, ctx: AccountContext, group_id: str) -> None:
    group = await get_group(db, ctx, group_id)
    require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
    await db["groups"].update_one({"_id": group.id}, {"$set": {"status": Status.ARCHIVED.value}})
    await set_group_membership_status(db, group.id, Status.ARCHIVED)
    await audit.record("group.archived", actor=ctx.principal, account_id=ctx.account.id,
                       solution_id=ctx.solution.id, target=group.id)


# --------------------------------------------------------------------------
# Members and invitations
# --------------------------------------------------------------------------


async def _require_user(db: Database, uid: str) -> dict[str, Any]:
    doc = await db["users"].find_one({"_id": uid[:128]})
    if doc is None:
        raise NotFound("No user with this id has signed in yet; invite them by email instead.")
    return doc


def _check_role(kind: MembershipKind, role: Role) -> None:
    if role not in ROLES_BY_KIND[kind]:
        allowed = ", ".join(sorted(r.value for r in ROLES_BY_KIND[kind]))
        raise Unprocessable(f"role must be one of {allowed} here.")


async def _account_admin_count(db: Database, account_id: str) -> int:
    users = await db["users"].find(
        {"memberships.account_id": account_id}, projection={"memberships": 1}
    ).to_list()
    return sum(
        1 for u in users for m in u.get("memberships", [])
        if m.get("kind") == "account" and m.get("account_id") == account_id
        and m.get("role") == Role.ACCOUNT_ADMIN.value
    )


async def set_account_member(
    db: Database, audit: AuditLog, ctx: AccountContext, uid: str, role: Role | None
) -> None:
    """Grant (role) or remove (None) an account role; never above one's own."""
    require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
    if role is not None:
        _check_role(MembershipKind.ACCOUNT, role)
        if ROLE_RANK[role] > effective_rank(ctx.principal, ctx):
            raise Forbidden("You cannot grant a role above your own.")
    user = await _require_user(db, uid)
    current = next(
        (m for m in user.get("memberships", [])
         if m.get("kind") == "account" and m.get("account_id") == ctx.account.id), None)
    if role is None and current is None:
        raise NotFound("This user is not a member of the account.")
    was_admin = current is not None and current.get("role") == Role.ACCOUNT_ADMIN.value
    if was_admin and role is not Role.ACCOUNT_ADMIN:
        if await _account_admin_count(db, ctx.account.id) <= 1:
            raise Conflict("The account must keep at least one ACCOUNT_ADMIN.",
                           type_slug="last-admin")
    membership = Membership(kind=MembershipKind.ACCOUNT, role=role or Role.MEMBER,
                            solution_id=ctx.solution.id, account_id=ctx.account.id)
    if role is None:
        await remove_membership(db, uid, membership)
        for m in user.get("memberships", []):
            if m.get("kind") == "group" and m.get("account_id") == ctx.account.id:
                await remove_membership(db, uid, Membership.model_validate(m))
    else:
        await set_membership(db, uid, membership)
    await audit.record("account.member." + ("removed" if role is None else "set"),
                       actor=ctx.principal, account_id=ctx.account.id,
                       solution_id=ctx.solution.id, target=uid,
                       details={"role": role.value if role else None})


async def set_group_member(
    db: Database, audit: AuditLog, ctx: AccountContext, group_id: str, uid: str,
    role: Role | None,
) -> None:
    group = await get_group(db, ctx, group_id)
    require_rank(ctx.principal, ctx, Role.GROUP_ADMIN, group.id)
    if role is not None:
        _check_role(MembershipKind.GROUP, role)
        if ROLE_RANK[role] > effective_rank(ctx.principal, ctx, group.id):
            raise Forbidden("You cannot grant a role above your own.")
    user = await _require_user(db, uid)
    is_account_member = any(
        m.get("kind") == "account" and m.get("account_id") == ctx.account.id
        for m in user.get("memberships", [])
    )
    if role is not None and not is_account_member:
        raise Conflict("Add the user to the account before adding them to one of its groups.",
                       type_slug="not-account-member")
    membership = Membership(kind=MembershipKind.GROUP, role=role or Role.MEMBER,
                            solution_id=ctx.solution.id, account_id=ctx.account.id,
                            group_id=group.id)
    if role is None:
        await remove_membership(db, uid, membership)
    else:
        await set_membership(db, uid, membership)
    await audit.record("group.member." + ("removed" if role is None else "set"),
                       actor=ctx.principal, account_id=ctx.account.id,
                       solution_id=ctx.solution.id, target=uid,
                       details={"group_id": group.id, "role": role.value if role else None})


async def invite(
    db: Database, audit: AuditLog, ctx: AccountContext, *, email: str, role: Role,
    group_id: str | None,
) -> dict[str, Any]:
    require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
    _check_role(MembershipKind.ACCOUNT, role)
    if ROLE_RANK[role] > effective_rank(ctx.principal, ctx):
        raise Forbidden("You cannot grant a role above your own.")
    if group_id:
        await get_group(db, ctx, group_id)
    normalized = normalize_email(email)
    if "@" not in normalized or len(normalized) > 254:
        raise Unprocessable("email is not a valid address.")
    invitation = {
        "_id": new_id(), "account_id": ctx.account.id, "solution_id": ctx.solution.id,
        "email": email, "email_normalized": normalized, "role": role.value,
        "group_id": group_id, "status": "pending", "invited_by": ctx.principal.uid,
        "created_at": utcnow(),
    }
    existing = await db["users"].find_one({"email_normalized": normalized})
    await db["invitations"].insert_one(invitation)
    if existing is not None:
        # Already signed in once: accept at once (same rule as first sign-in).
        from core.tenancy.directory import Directory

        await Directory(db)._accept_invitations(existing["_id"], normalized)
        invitation["status"] = "accepted"
    await audit.record("invitation.created", actor=ctx.principal, account_id=ctx.account.id,
                       solution_id=ctx.solution.id, target=str(invitation["_id"]),
                       details={"role": role.value, "group_id": group_id})
    return invitation
