"""Pure tests of core/tenancy/rules.py against the rules table of ARCHITECTURE §3.

The hand-written table below is transcribed from the specification, not from
the code; the hypothesis test then checks that the two forms the code keeps
(``can_read``/``can_write`` and the grant keys the database filters on) agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.tenancy.models import (
    Membership,
    MembershipKind,
    Principal,
    Role,
    Scope,
    ScopedResource,
    Status,
    SystemRole,
)
from core.tenancy.rules import (
    access_filter,
    can_read,
    can_write,
    explain,
    has_context_access,
    principal_read_keys,
    principal_write_keys,
    resource_read_keys,
    resource_write_keys,
    write_filter,
)

# --------------------------------------------------------------------------
# A fixed hierarchy: S1 {A1 {G1, G2}, A2}, S2 {A3 {G3}}
# --------------------------------------------------------------------------

S1, S2 = "s1", "s2"
A1, A2, A3 = "a1", "a2", "a3"
G1, G2, G3 = "g1", "g2", "g3"
NAMES = {S1: "SynergyHub Medical", A1: "Northside Hospital", G1: "Cardiology"}


def sol(s: str, status: Status = Status.ACTIVE) -> Membership:
    return Membership(kind=MembershipKind.SOLUTION, role=Role.SOLUTION_ADMIN, solution_id=s,
                      status=status)


def acc(role: Role, a: str = A1, s: str = S1, status: Status = Status.ACTIVE) -> Membership:
    return Membership(kind=MembershipKind.ACCOUNT, role=role, solution_id=s, account_id=a,
                      status=status)


def grp(role: Role, g: str = G1, a: str = A1, s: str = S1) -> Membership:
    return Membership(kind=MembershipKind.GROUP, role=role, solution_id=s, account_id=a,
                      group_id=g)


P: dict[str, Principal] = {
    "superadmin": Principal(uid="super", system_role=SystemRole.SUPERADMIN),
    "sol_admin": Principal(uid="soladmin", memberships=(sol(S1),)),
    "sol_admin_s2": Principal(uid="soladmin2", memberships=(sol(S2),)),
    "acc_admin": Principal(uid="accadmin", memberships=(acc(Role.ACCOUNT_ADMIN),)),
    "member": Principal(uid="member", memberships=(acc(Role.MEMBER),)),
    "viewer": Principal(uid="viewer", memberships=(acc(Role.VIEWER),)),
    "group_admin": Principal(uid="gadmin",
                             memberships=(acc(Role.MEMBER), grp(Role.GROUP_ADMIN))),
    "group_member": Principal(uid="gmember", memberships=(acc(Role.MEMBER), grp(Role.MEMBER))),
    "outsider": Principal(uid="outsider"),
    "member_a2": Principal(uid="membera2", memberships=(acc(Role.MEMBER, A2),)),
    "admin_a3": Principal(uid="admina3", memberships=(acc(Role.ACCOUNT_ADMIN, A3, S2),)),
    "archived_member": Principal(uid="exmember",
                                 memberships=(acc(Role.MEMBER, status=Status.ARCHIVED),)),
    "archived_sol_admin": Principal(uid="exsol", memberships=(sol(S1, Status.ARCHIVED),)),
    # A break-glass session of an ACCOUNT_ADMIN: reads like one, writes nothing.
    "read_only_admin": Principal(uid="accadmin", memberships=(acc(Role.ACCOUNT_ADMIN),),
                                 impersonator="super", read_only=True),
}


def resource(scope: Scope, *, owner: str = "member", a: str = A1, s: str = S1,
             g: str | None = None) -> ScopedResource:
    group = g if scope is Scope.GROUP else None
    ids = {"solution_id": s, "account_id": a, "group_id": group, "owner_id": owner}
    return ScopedResource(id=f"r-{scope.value}-{a}-{group}-{owner}", scope=scope,
                          read_keys=resource_read_keys(scope, **ids),
                          write_keys=resource_write_keys(scope, **ids), **ids)


R: dict[str, ScopedResource] = {
    "global": resource(Scope.GLOBAL, owner="super"),
    "solution": resource(Scope.SOLUTION, owner="soladmin"),
    "account": resource(Scope.ACCOUNT, owner="accadmin"),
    "group": resource(Scope.GROUP, owner="accadmin", g=G1),
    "group2": resource(Scope.GROUP, owner="accadmin", g=G2),
    "private": resource(Scope.PRIVATE, owner="member"),
    "private_viewer": resource(Scope.PRIVATE, owner="viewer"),
    "private_super": resource(Scope.PRIVATE, owner="super"),
    "account_a2": resource(Scope.ACCOUNT, owner="x", a=A2),
    "solution_s2": resource(Scope.SOLUTION, owner="x", a=A3, s=S2),
    "group_a3": resource(Scope.GROUP, owner="x", a=A3, s=S2, g=G3),
}

# The rules table of ARCHITECTURE §3, transcribed by hand: "" none, "R" read, "RW" read+write.
# Columns are the resources above (all but the last three live in A1 of S1).
COLUMNS = ("global", "solution", "account", "group", "group2", "private", "private_viewer",
           "private_super", "account_a2", "solution_s2", "group_a3")
TABLE: dict[str, tuple[str, ...]] = {
    #                   glob  sol   acc   grp   grp2  priv  privV privS accA2 solS2 grpA3
    "superadmin":      ("RW", "RW", "RW", "RW", "RW", "",   "",   "RW", "RW", "RW", "RW"),
    "sol_admin":       ("R",  "RW", "RW", "RW", "RW", "",   "",   "",   "RW", "",   ""),
    "sol_admin_s2":    ("R",  "",   "",   "",   "",   "",   "",   "",   "",   "RW", "RW"),
    "acc_admin":       ("R",  "R",  "RW", "RW", "RW", "",   "",   "",   "",   "",   ""),
    "member":          ("R",  "R",  "R",  "",   "",   "RW", "",   "",   "",   "",   ""),
    "viewer":          ("R",  "R",  "R",  "",   "",   "",   "R",  "",   "",   "",   ""),
    "group_admin":     ("R",  "R",  "R",  "RW", "",   "",   "",   "",   "",   "",   ""),
    "group_member":    ("R",  "R",  "R",  "R",  "",   "",   "",   "",   "",   "",   ""),
    "outsider":        ("R",  "",   "",   "",   "",   "",   "",   "",   "",   "",   ""),
    "member_a2":       ("R",  "R",  "",   "",   "",   "",   "",   "",   "R",  "",   ""),
    "admin_a3":        ("R",  "",   "",   "",   "",   "",   "",   "",   "",   "R",  "RW"),
    "archived_member": ("R",  "",   "",   "",   "",   "",   "",   "",   "",   "",   ""),
    "archived_sol_admin": ("R", "",  "",   "",   "",   "",   "",   "",   "",   "",   ""),
    "read_only_admin": ("R",  "R",  "R",  "R",  "R",  "",   "",   "",   "",   "",   ""),
}

CASES = [
    pytest.param(p, col, action, id=f"{p}-{col}-{action}")
    for p in TABLE
    for col in COLUMNS
    for action in ("read", "write")
]


@pytest.mark.parametrize(("principal", "column", "action"), CASES)
def test_rules_table(principal: str, column: str, action: str) -> None:
    cell = TABLE[principal][COLUMNS.index(column)]
    expected = ("R" in cell) if action == "read" else ("W" in cell)
    check = can_read if action == "read" else can_write
    assert check(P[principal], R[column]) is expected
    # explain agrees with the decision
    assert explain(P[principal], action, R[column]).allowed is expected  # type: ignore[arg-type]


def test_table_covers_every_principal_and_resource() -> None:
    assert set(TABLE) == set(P)
    assert set(COLUMNS) == set(R)
    assert all(len(row) == len(COLUMNS) for row in TABLE.values())


# --------------------------------------------------------------------------
# Grant keys: the shapes ARCHITECTURE §3 names
# --------------------------------------------------------------------------


def test_resource_read_keys_shapes() -> None:
    ids = {"solution_id": "s", "account_id": "a", "group_id": "g", "owner_id": "u"}
    assert resource_read_keys(Scope.GLOBAL, **ids) == ["global"]
    assert resource_read_keys(Scope.SOLUTION, **ids) == ["sol:s"]
    assert resource_read_keys(Scope.ACCOUNT, **ids) == ["acc:a"]
    assert sorted(resource_read_keys(Scope.GROUP, **ids)) == ["grp:g", "grpall:a"]
    assert resource_read_keys(Scope.PRIVATE, **ids) == ["usr:u@a"]


def test_principal_keys_named_in_spec() -> None:
    admin = principal_read_keys(P["acc_admin"], solution_id=S1, account_id=A1)
    assert f"grpall:{A1}" in admin
    for a in (A1, A2):
        sol_keys = principal_read_keys(P["sol_admin"], solution_id=S1, account_id=a)
        assert {f"acc:{a}", f"grpall:{a}"} <= set(sol_keys)
        super_keys = principal_read_keys(P["superadmin"], solution_id=S1, account_id=a)
        assert {f"acc:{a}", f"grpall:{a}"} <= set(super_keys)
    member = principal_read_keys(P["member"], solution_id=S1, account_id=A1)
    assert f"grpall:{A1}" not in member and not any(k.startswith("grp:") for k in member)
    gm = principal_read_keys(P["group_member"], solution_id=S1, account_id=A1)
    assert f"grp:{G1}" in gm and f"grp:{G2}" not in gm
    # no context, no keys
    assert principal_read_keys(P["outsider"], solution_id=S1, account_id=A1) == []
    assert principal_read_keys(P["member_a2"], solution_id=S1, account_id=A1) == []
    assert principal_write_keys(P["viewer"], solution_id=S1, account_id=A1) == []
    assert principal_write_keys(P["read_only_admin"], solution_id=S1, account_id=A1) == []


def test_filters_are_single_in_predicates() -> None:
    f = access_filter(P["member"], solution_id=S1, account_id=A1)
    assert list(f) == ["read_keys"] and list(f["read_keys"]) == ["$in"]
    w = write_filter(P["acc_admin"], solution_id=S1, account_id=A1)
    assert list(w) == ["write_keys"] and list(w["write_keys"]) == ["$in"]
    # A principal without access gets a filter that matches nothing.
    assert access_filter(P["outsider"], solution_id=S1, account_id=A1) == {
        "read_keys": {"$in": []}}


def test_has_context_access() -> None:
    ctx = {"solution_id": S1, "account_id": A1}
    for name in ("superadmin", "sol_admin", "acc_admin", "member", "viewer", "group_admin",
                 "group_member", "read_only_admin"):
        assert has_context_access(P[name], **ctx), name
    for name in ("sol_admin_s2", "outsider", "member_a2", "admin_a3", "archived_member",
                 "archived_sol_admin"):
        assert not has_context_access(P[name], **ctx), name


# --------------------------------------------------------------------------
# explain: the grant path in words
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "action", "column", "text"),
    [
        ("acc_admin", "read", "account", "ACCOUNT_ADMIN of Northside Hospital → account scope"),
        ("acc_admin", "write", "group", "ACCOUNT_ADMIN of Northside Hospital → group scope"),
        ("sol_admin", "write", "account", "SOLUTION_ADMIN of SynergyHub Medical → account scope"),
        ("group_admin", "write", "group", "GROUP_ADMIN of Cardiology → group scope"),
        ("group_member", "read", "group", "MEMBER of Cardiology → group scope"),
        ("viewer", "read", "account", "VIEWER of Northside Hospital → account scope"),
        ("superadmin", "write", "global", "SUPERADMIN → global scope"),
        ("superadmin", "read", "account", "SUPERADMIN → account scope"),
        ("outsider", "read", "global", "signed-in user → global scope"),
        ("member", "write", "private", "owner of Northside Hospital → private scope"),
        ("member", "read", "solution", "MEMBER of SynergyHub Medical → solution scope"),
        ("member", "write", "account", "no grant → account scope denied"),
        ("superadmin", "read", "private", "no grant → private scope denied"),
        ("read_only_admin", "write", "account", "read-only session → account scope denied"),
    ],
)
def test_explain_paths(principal: str, action: str, column: str, text: str) -> None:
    result = explain(P[principal], action, R[column], NAMES)  # type: ignore[arg-type]
    assert result.path == text
    assert result.allowed is (not text.endswith("denied"))
    assert result.as_dict() == {"allowed": result.allowed, "action": action, "path": text}


def test_explain_without_names_uses_ids() -> None:
    path = explain(P["acc_admin"], "read", R["account"]).path
    assert path == f"ACCOUNT_ADMIN of {A1} → account scope"


# --------------------------------------------------------------------------
# Property: grant keys ⇔ the table, for random hierarchies and principals
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Hierarchy:
    solutions: tuple[str, ...]
    accounts: dict[str, str]            # account -> solution
    groups: dict[str, str]              # group -> account


UIDS = ("u0", "u1", "u2")


@st.composite
def hierarchies(draw: st.DrawFn) -> Hierarchy:
    n_sol = draw(st.integers(1, 2))
    solutions = tuple(f"s{i}" for i in range(n_sol))
    accounts: dict[str, str] = {}
    groups: dict[str, str] = {}
    for s in solutions:
        for j in range(draw(st.integers(1, 2))):
            a = f"{s}a{j}"
            accounts[a] = s
            for k in range(draw(st.integers(0, 2))):
                groups[f"{a}g{k}"] = a
    return Hierarchy(solutions, accounts, groups)


@st.composite
def principals(draw: st.DrawFn, h: Hierarchy) -> Principal:
    status = st.sampled_from([Status.ACTIVE, Status.ACTIVE, Status.ACTIVE, Status.ARCHIVED])
    options: list[st.SearchStrategy[Membership]] = []
    for s in h.solutions:
        options.append(st.builds(sol, st.just(s), status))
    for a, s in h.accounts.items():
        options.append(st.builds(acc, st.sampled_from([Role.ACCOUNT_ADMIN, Role.MEMBER,
                                                       Role.VIEWER]),
                                 st.just(a), st.just(s), status))
    for g, a in h.groups.items():
        options.append(st.builds(grp, st.sampled_from([Role.GROUP_ADMIN, Role.MEMBER]),
                                 st.just(g), st.just(a), st.just(h.accounts[a])))
    drawn = draw(st.lists(st.one_of(options), max_size=6))
    by_target: dict[tuple[str, str], Membership] = {}
    for m in drawn:  # one role per target, as set_membership stores them
        by_target[(m.kind.value, m.target_id)] = m
    return Principal(
        uid=draw(st.sampled_from(UIDS)),
        system_role=draw(st.sampled_from([None, None, None, SystemRole.SUPERADMIN])),
        memberships=tuple(by_target.values()),
        read_only=draw(st.booleans()),
    )


@st.composite
def resources(draw: st.DrawFn, h: Hierarchy) -> ScopedResource:
    a = draw(st.sampled_from(sorted(h.accounts)))
    s = h.accounts[a]
    own_groups = sorted(g for g, ga in h.groups.items() if ga == a)
    scopes = list(Scope) if own_groups else [sc for sc in Scope if sc is not Scope.GROUP]
    scope = draw(st.sampled_from(scopes))
    g = draw(st.sampled_from(own_groups)) if scope is Scope.GROUP else None
    return resource(scope, owner=draw(st.sampled_from(UIDS)), a=a, s=s, g=g)


def visible_in(r: ScopedResource, *, solution_id: str, account_id: str) -> bool:
    """Resources a list in this account context can show at all."""
    return (
        r.scope is Scope.GLOBAL
        or (r.scope is Scope.SOLUTION and r.solution_id == solution_id)
        or r.account_id == account_id
    )


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Hierarchy, list[Principal], list[ScopedResource]]:
    h = draw(hierarchies())
    return (h, draw(st.lists(principals(h), min_size=1, max_size=4)),
            draw(st.lists(resources(h), min_size=1, max_size=12)))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_grant_keys_agree_with_rules(
    world: tuple[Hierarchy, list[Principal], list[ScopedResource]],
) -> None:
    h, people, things = world
    for p in people:
        for a, s in h.accounts.items():
            ctx = {"solution_id": s, "account_id": a}
            if not has_context_access(p, **ctx):
                assert principal_read_keys(p, **ctx) == []
                assert principal_write_keys(p, **ctx) == []
                continue
            rkeys = set(principal_read_keys(p, **ctx))
            wkeys = set(principal_write_keys(p, **ctx))
            for r in things:
                reads = bool(rkeys & set(r.read_keys))
                writes = bool(wkeys & set(r.write_keys))
                if visible_in(r, **ctx):
                    assert reads == can_read(p, r), _describe("read", p, a, r, reads)
                    assert writes == can_write(p, r), _describe("write", p, a, r, writes)
                else:
                    # Isolation: nothing outside the context matches its keys.
                    assert not reads and not writes, _describe("isolation", p, a, r, True)


def _describe(action: str, p: Principal, account_id: str, r: ScopedResource, keys: bool) -> str:
    roles = ", ".join(f"{m.role.value}@{m.target_id}({m.status.value})" for m in p.memberships)
    return (
        f"{action}: grant keys say {keys}, can_{action} says {not keys} — principal "
        f"{p.uid} superadmin={p.is_superadmin} read_only={p.read_only} roles=[{roles}] in "
        f"context {account_id}; resource {r.scope.value} in {r.account_id} group={r.group_id} "
        f"owner={r.owner_id}"
    )
