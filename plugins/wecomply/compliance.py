"""Who owes which acknowledgement, and how compliant a group or account is: pure rules.

An *obligation* is (member, policy): the member must acknowledge the policy's
current version. Publishing a new version therefore resets what is owed —
acknowledgements of older versions no longer count. Audience:

* an account policy is owed by every MEMBER and ACCOUNT_ADMIN of the account;
* a group policy by every member of that group (GROUP_ADMIN or MEMBER);
* VIEWERs owe nothing (they write nothing, so they cannot attest), and neither
  do SUPERADMINs or SOLUTION_ADMINs without a role in the account.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.tenancy.models import (
    AccountContext,
    Membership,
    MembershipKind,
    Principal,
    Role,
    Scope,
    Status,
)
from plugins.wecomply.models import Policy


@dataclass(frozen=True)
class Member:
    """A user of the account as the kernel directory lists it."""

    uid: str
    email: str | None
    memberships: tuple[Membership, ...]

    def active(self) -> list[Membership]:
        return [m for m in self.memberships if m.status is Status.ACTIVE]


def account_role(memberships: Iterable[Membership], account_id: str) -> Role | None:
    for m in memberships:
        if (m.kind is MembershipKind.ACCOUNT and m.account_id == account_id
                and m.status is Status.ACTIVE):
            return m.role
    return None


def in_group(memberships: Iterable[Membership], group_id: str) -> bool:
    return any(m.kind is MembershipKind.GROUP and m.group_id == group_id
               and m.status is Status.ACTIVE for m in memberships)


def owes(memberships: Iterable[Membership], policy: Policy) -> bool:
    """Does a user with these memberships have to acknowledge ``policy``?"""
    if policy.status != "active":
        return False
    memberships = list(memberships)
    role = account_role(memberships, policy.account_id)
    if role is None or role is Role.VIEWER:
        return False
    if policy.scope is Scope.ACCOUNT:
        return True
    if policy.scope is Scope.GROUP and policy.group_id:
        return in_group(memberships, policy.group_id)
    return False


def principal_owes(principal: Principal, policy: Policy) -> bool:
    return owes(principal.memberships, policy)


def may_oversee(principal: Principal, ctx: AccountContext, group_id: str | None = None) -> bool:
    """May see everyone's acknowledgements: ACCOUNT_ADMIN and above for the account,
    plus GROUP_ADMIN for their group (a VIEWER's group role grants nothing)."""
    if principal.is_superadmin or principal.is_solution_admin(ctx.solution.id):
        return True
    role = principal.account_role(ctx.account.id)
    if role is Role.ACCOUNT_ADMIN:
        return True
    return (group_id is not None and role not in (None, Role.VIEWER)
            and principal.group_role(group_id) is Role.GROUP_ADMIN)


def may_oversee_policy(principal: Principal, ctx: AccountContext, policy: Policy) -> bool:
    return may_oversee(principal, ctx, policy.group_id if policy.scope is Scope.GROUP else None)


@dataclass(frozen=True)
class Obligation:
    user_id: str
    email: str | None
    policy_id: str
    title: str
    scope: str
    group_id: str | None
    version: int
    due_at: datetime | None
    acknowledged: bool
    overdue: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id, "email": self.email, "policy_id": self.policy_id,
            "title": self.title, "scope": self.scope, "group_id": self.group_id,
            "version": self.version,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "acknowledged": self.acknowledged, "overdue": self.overdue,
        }


def obligations(
    policies: Iterable[Policy],
    members: Iterable[Member],
    acknowledged: Mapping[str, set[str]],
    *,
    now: datetime,
) -> list[Obligation]:
    """Every (member, policy) pair owed; ``acknowledged`` maps policy id → user ids
    who acknowledged its *current* version."""
    members = list(members)
    out: list[Obligation] = []
    for policy in policies:
        done = acknowledged.get(policy.id, set())
        for member in members:
            if not owes(member.active(), policy):
                continue
            ok = member.uid in done
            due = policy.current_due_at
            out.append(Obligation(
                user_id=member.uid, email=member.email, policy_id=policy.id,
                title=policy.title, scope=policy.scope.value, group_id=policy.group_id,
                version=policy.current_version, due_at=due, acknowledged=ok,
                overdue=(not ok and due is not None and due < now),
            ))
    return out


def summary(items: Iterable[Obligation]) -> dict[str, Any]:
    """Counts and the share acknowledged (``None`` when nothing is owed)."""
    items = list(items)
    total = len(items)
    done = sum(1 for o in items if o.acknowledged)
    return {
        "obligations": total,
        "acknowledged": done,
        "pending": total - done,
        "overdue": sum(1 for o in items if o.overdue),
        "share_acknowledged": round(done / total, 4) if total else None,
        "members": len({o.user_id for o in items}),
        "policies": len({o.policy_id for o in items}),
    }


def for_group(items: Iterable[Obligation], members: Iterable[Member], group_id: str
              ) -> list[Obligation]:
    """The obligations of the group's members: its group policies and the account's."""
    in_it = {m.uid for m in members if in_group(m.active(), group_id)}
    return [o for o in items if o.user_id in in_it
            and (o.scope == Scope.ACCOUNT.value or o.group_id == group_id)]
