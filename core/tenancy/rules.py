"""The access rules of ARCHITECTURE §3 as pure functions.

Two equivalent forms are kept on purpose:

* ``can_read`` / ``can_write`` state the rules table directly, role by role;
* grant keys turn it into one indexed predicate: each resource stores the keys
  that may read and write it, a principal holds keys for its account context,
  and access is "the sets intersect" (``{"read_keys": {"$in": keys}}``).

Property tests check that both forms agree for random hierarchies, so the
query the database runs is the table the product promises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from core.tenancy.models import (
    MembershipKind,
    Principal,
    Role,
    Scope,
    ScopedResource,
)

Action = Literal["read", "write"]
GLOBAL_KEY = "global"


# --------------------------------------------------------------------------
# Keys a resource carries
# --------------------------------------------------------------------------


def resource_read_keys(
    scope: Scope, *, solution_id: str, account_id: str, group_id: str | None, owner_id: str
) -> list[str]:
    match scope:
        case Scope.GLOBAL:
            return [GLOBAL_KEY]
        case Scope.SOLUTION:
            return [f"sol:{solution_id}"]
        case Scope.ACCOUNT:
            return [f"acc:{account_id}"]
        case Scope.GROUP:
            return [f"grp:{group_id}", f"grpall:{account_id}"]
        case Scope.PRIVATE:
            return [f"usr:{owner_id}@{account_id}"]
    raise ValueError(f"unknown scope {scope!r}")


def resource_write_keys(
    scope: Scope, *, solution_id: str, account_id: str, group_id: str | None, owner_id: str
) -> list[str]:
    match scope:
        case Scope.GLOBAL:
            return ["w:global"]
        case Scope.SOLUTION:
            return [f"w:sol:{solution_id}"]
        case Scope.ACCOUNT:
            return [f"w:acc:{account_id}"]
        case Scope.GROUP:
            return [f"w:grp:{group_id}", f"w:acc:{account_id}"]
        case Scope.PRIVATE:
            return [f"w:usr:{owner_id}@{account_id}"]
    raise ValueError(f"unknown scope {scope!r}")


# --------------------------------------------------------------------------
# Keys a principal holds inside one account context
# --------------------------------------------------------------------------


def has_context_access(principal: Principal, *, solution_id: str, account_id: str) -> bool:
    """May the principal act inside this account at all (before any scope)?"""
    return (
        principal.is_superadmin
        or principal.is_solution_admin(solution_id)
        or principal.account_role(account_id) is not None
    )


def _above_account(principal: Principal, solution_id: str) -> bool:
    return principal.is_superadmin or principal.is_solution_admin(solution_id)


def principal_read_keys(principal: Principal, *, solution_id: str, account_id: str) -> list[str]:
    """Read keys for ``principal`` acting in ``account_id`` (empty: no access)."""
    if not has_context_access(principal, solution_id=solution_id, account_id=account_id):
        return []
    keys = [
        GLOBAL_KEY,
        f"sol:{solution_id}",
        f"acc:{account_id}",
        f"usr:{principal.uid}@{account_id}",
    ]
    if _above_account(principal, solution_id) or (
        principal.account_role(account_id) is Role.ACCOUNT_ADMIN
    ):
        keys.append(f"grpall:{account_id}")
    keys.extend(
        f"grp:{m.group_id}"
        for m in principal.active()
        if m.kind is MembershipKind.GROUP and m.account_id == account_id
    )
    return keys


def principal_write_keys(principal: Principal, *, solution_id: str, account_id: str) -> list[str]:
    """Write keys for ``principal`` acting in ``account_id``; VIEWERs and read-only get none."""
    if principal.read_only or not has_context_access(
        principal, solution_id=solution_id, account_id=account_id
    ):
        return []
    account_role = principal.account_role(account_id)
    above = _above_account(principal, solution_id)
    keys: list[str] = []
    if principal.is_superadmin:
        keys.append("w:global")
    if above:
        keys.append(f"w:sol:{solution_id}")
    if above or account_role is Role.ACCOUNT_ADMIN:
        keys.append(f"w:acc:{account_id}")
    if account_role is not Role.VIEWER:
        keys.extend(
            f"w:grp:{m.group_id}"
            for m in principal.active()
            if m.kind is MembershipKind.GROUP
            and m.account_id == account_id
            and m.role is Role.GROUP_ADMIN
        )
    if above or account_role in (Role.ACCOUNT_ADMIN, Role.MEMBER):
        keys.append(f"w:usr:{principal.uid}@{account_id}")
    return keys


def access_filter(principal: Principal, *, solution_id: str, account_id: str) -> dict[str, Any]:
    """The single indexed predicate every read is combined with."""
    keys = principal_read_keys(principal, solution_id=solution_id, account_id=account_id)
    return {"read_keys": {"$in": keys}}


def write_filter(principal: Principal, *, solution_id: str, account_id: str) -> dict[str, Any]:
    """The predicate every update and delete is combined with."""
    keys = principal_write_keys(principal, solution_id=solution_id, account_id=account_id)
    return {"write_keys": {"$in": keys}}


# --------------------------------------------------------------------------
# The rules table, stated directly
# --------------------------------------------------------------------------


def can_read(principal: Principal, resource: ScopedResource) -> bool:
    """ARCHITECTURE §3 'who may read', independent of grant keys."""
    return _grant(principal, "read", resource) is not None


def can_write(principal: Principal, resource: ScopedResource) -> bool:
    """ARCHITECTURE §3 'who may write', independent of grant keys."""
    return _grant(principal, "write", resource) is not None


def _grant(principal: Principal, action: Action, r: ScopedResource) -> tuple[str, str] | None:
    """The first grant that allows ``action``: (role, target id), or None."""
    if action == "write" and principal.read_only:
        return None
    super_ = principal.is_superadmin
    sol_admin = principal.is_solution_admin(r.solution_id)
    acc_role = principal.account_role(r.account_id)
    writes = acc_role is not Role.VIEWER
    match r.scope:
        case Scope.PRIVATE:
            if principal.uid != r.owner_id or not has_context_access(
                principal, solution_id=r.solution_id, account_id=r.account_id
            ):
                return None
            if action == "read":
                return ("OWNER", r.account_id)
            if super_ or sol_admin or acc_role in (Role.ACCOUNT_ADMIN, Role.MEMBER):
                return ("OWNER", r.account_id)
            return None
        case Scope.GLOBAL:
            if super_:
                return ("SUPERADMIN", "platform")
            return ("SIGNED_IN", "platform") if action == "read" else None
    if super_:
        return ("SUPERADMIN", "platform")
    if sol_admin:
        return (Role.SOLUTION_ADMIN.value, r.solution_id)
    match r.scope:
        case Scope.SOLUTION:
            if action == "read" and principal.member_of_solution(r.solution_id):
                return ("MEMBER", r.solution_id)
        case Scope.ACCOUNT:
            if acc_role is Role.ACCOUNT_ADMIN:
                return (Role.ACCOUNT_ADMIN.value, r.account_id)
            if action == "read" and acc_role is not None:
                return (acc_role.value, r.account_id)
        case Scope.GROUP:
            if acc_role is Role.ACCOUNT_ADMIN:
                return (Role.ACCOUNT_ADMIN.value, r.account_id)
            group_role = principal.group_role(r.group_id or "")
            if group_role is not None and acc_role is not None:
                if action == "read":
                    return (group_role.value, r.group_id or "")
                if group_role is Role.GROUP_ADMIN and writes:
                    return (Role.GROUP_ADMIN.value, r.group_id or "")
    return None


@dataclass(frozen=True)
class Explanation:
    allowed: bool
    action: Action
    path: str

    def as_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "action": self.action, "path": self.path}


def explain(
    principal: Principal,
    action: Action,
    resource: ScopedResource,
    names: Mapping[str, str] | None = None,
) -> Explanation:
    """The grant path, e.g. "ACCOUNT_ADMIN of Northside Hospital → account scope"."""
    names = names or {}
    grant = _grant(principal, action, resource)
    scope = f"{resource.scope.value} scope"
    if grant is None:
        reason = "read-only session" if action == "write" and principal.read_only else "no grant"
        return Explanation(False, action, f"{reason} → {scope} denied")
    role, target = grant
    label = {
        "OWNER": "owner",
        "SIGNED_IN": "signed-in user",
        "SUPERADMIN": "SUPERADMIN",
    }.get(role, role)
    where = "" if target == "platform" else f" of {names.get(target, target)}"
    return Explanation(True, action, f"{label}{where} → {scope}")
