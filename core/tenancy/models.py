"""Tenancy entities: pydantic models and enums, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field


def new_id() -> str:
    """Time-ordered, URL-safe ids (ObjectId hex) so ``_id`` doubles as a cursor."""
    return str(ObjectId())


def utcnow() -> datetime:
    return datetime.now(UTC)


class SystemRole(StrEnum):
    SUPERADMIN = "SUPERADMIN"


class Role(StrEnum):
    SOLUTION_ADMIN = "SOLUTION_ADMIN"
    ACCOUNT_ADMIN = "ACCOUNT_ADMIN"
    MEMBER = "MEMBER"
    VIEWER = "VIEWER"
    GROUP_ADMIN = "GROUP_ADMIN"


class MembershipKind(StrEnum):
    SOLUTION = "solution"
    ACCOUNT = "account"
    GROUP = "group"


ROLES_BY_KIND: dict[MembershipKind, frozenset[Role]] = {
    MembershipKind.SOLUTION: frozenset({Role.SOLUTION_ADMIN}),
    MembershipKind.ACCOUNT: frozenset({Role.ACCOUNT_ADMIN, Role.MEMBER, Role.VIEWER}),
    MembershipKind.GROUP: frozenset({Role.GROUP_ADMIN, Role.MEMBER}),
}

# Higher rank may grant lower; nobody grants above their own rank.
ROLE_RANK: dict[Role, int] = {
    Role.VIEWER: 1,
    Role.MEMBER: 2,
    Role.GROUP_ADMIN: 3,
    Role.ACCOUNT_ADMIN: 4,
    Role.SOLUTION_ADMIN: 5,
}


class Scope(StrEnum):
    GLOBAL = "global"
    SOLUTION = "solution"
    ACCOUNT = "account"
    GROUP = "group"
    PRIVATE = "private"


class Status(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class Membership(BaseModel):
    """One contextual role. Stored inside the user document: one read loads them all."""

    model_config = ConfigDict(frozen=True)

    kind: MembershipKind
    role: Role
    solution_id: str
    account_id: str | None = None
    group_id: str | None = None
    status: Status = Status.ACTIVE

    @property
    def target_id(self) -> str:
        if self.kind is MembershipKind.GROUP:
            return self.group_id or ""
        if self.kind is MembershipKind.ACCOUNT:
            return self.account_id or ""
        return self.solution_id


class Principal(BaseModel):
    """The signed-in caller with every role it holds, as read on this request."""

    model_config = ConfigDict(frozen=True)

    uid: str
    email: str | None = None
    system_role: SystemRole | None = None
    memberships: tuple[Membership, ...] = ()
    impersonator: str | None = None
    read_only: bool = False

    @property
    def is_superadmin(self) -> bool:
        return self.system_role is SystemRole.SUPERADMIN

    def active(self) -> list[Membership]:
        return [m for m in self.memberships if m.status is Status.ACTIVE]

    def is_solution_admin(self, solution_id: str) -> bool:
        return any(
            m.kind is MembershipKind.SOLUTION and m.solution_id == solution_id
            for m in self.active()
        )

    def account_role(self, account_id: str) -> Role | None:
        for m in self.active():
            if m.kind is MembershipKind.ACCOUNT and m.account_id == account_id:
                return m.role
        return None

    def group_role(self, group_id: str) -> Role | None:
        for m in self.active():
            if m.kind is MembershipKind.GROUP and m.group_id == group_id:
                return m.role
        return None

    def member_of_solution(self, solution_id: str) -> bool:
        return any(
            m.kind is MembershipKind.ACCOUNT and m.solution_id == solution_id
            for m in self.active()
        )


class Solution(BaseModel):
    id: str
    slug: str
    name: str
    theme: str = "clinical"
    enabled_plugins: list[str] = Field(default_factory=list)
    plugin_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    domain: str | None = None
    status: Status = Status.ACTIVE
    created_at: datetime = Field(default_factory=utcnow)


class Account(BaseModel):
    id: str
    solution_id: str
    slug: str
    name: str
    status: Status = Status.ACTIVE
    created_at: datetime = Field(default_factory=utcnow)


class Group(BaseModel):
    id: str
    account_id: str
    solution_id: str
    name: str
    parent_id: str | None = None
    status: Status = Status.ACTIVE
    created_at: datetime = Field(default_factory=utcnow)


class AccountContext(BaseModel):
    """Where a request acts: the principal inside one account of one Solution."""

    model_config = ConfigDict(frozen=True)

    principal: Principal
    solution: Solution
    account: Account


class ScopedResource(BaseModel):
    """Base of every tenant-scoped record.

    ``solution_id``, ``account_id`` and ``owner_id`` are stamped by the
    repository from the request context; ``read_keys``/``write_keys`` are the
    grant keys derived from where the record lives (see rules.py).
    """

    model_config = ConfigDict(extra="ignore")

    collection: ClassVar[str] = ""
    # Fields a client may filter and sort on; everything else is refused.
    filterable: ClassVar[frozenset[str]] = frozenset()
    sortable: ClassVar[frozenset[str]] = frozenset({"created_at"})
    indexes: ClassVar[tuple[tuple[tuple[str, int], ...], ...]] = ()

    id: str
    solution_id: str
    account_id: str
    group_id: str | None = None
    owner_id: str
    scope: Scope
    read_keys: list[str] = Field(default_factory=list)
    write_keys: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
