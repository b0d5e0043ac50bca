"""Property test of the scoped repository against the real database (SecantusDB).

Random small hierarchies, memberships and resources: for every principal in
every account context it may enter, ``list`` (paginated to the end, random
sort and page size) returns exactly the resources the rules table lets it read
there, ``count`` agrees, and ``update``/``delete`` succeed exactly when the
rules let it write. Each example uses a fresh collection.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.kernel.errors import NotFound
from core.tenancy.models import (
    Account,
    AccountContext,
    Membership,
    MembershipKind,
    Principal,
    Role,
    Scope,
    ScopedResource,
    Solution,
    Status,
    SystemRole,
    new_id,
)
from core.tenancy.repository import MongoScopedRepository
from core.tenancy.rules import (
    can_read,
    can_write,
    has_context_access,
    resource_read_keys,
    resource_write_keys,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

UIDS = ("u0", "u1", "u2")
TITLES = ("alpha", "beta", "gamma")
BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)


class PropItem(ScopedResource):
    collection: ClassVar[str] = "prop_items"
    sortable: ClassVar[frozenset[str]] = frozenset({"created_at", "title"})
    title: str = "x"


def model_for(collection: str) -> type[PropItem]:
    return type(f"PropItem_{collection}", (PropItem,), {"collection": collection})


# -- strategies ------------------------------------------------------------------


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    solutions = [f"s{i}" for i in range(draw(st.integers(1, 2)))]
    accounts: dict[str, str] = {}
    groups: dict[str, str] = {}
    for s in solutions:
        for j in range(draw(st.integers(1, 2))):
            a = f"{s}a{j}"
            accounts[a] = s
            for k in range(draw(st.integers(0, 2))):
                groups[f"{a}g{k}"] = a

    status = st.sampled_from([Status.ACTIVE] * 3 + [Status.ARCHIVED])
    options: list[st.SearchStrategy[Membership]] = [
        st.builds(Membership, kind=st.just(MembershipKind.SOLUTION),
                  role=st.just(Role.SOLUTION_ADMIN), solution_id=st.just(s), status=status)
        for s in solutions
    ]
    options += [
        st.builds(Membership, kind=st.just(MembershipKind.ACCOUNT),
                  role=st.sampled_from([Role.ACCOUNT_ADMIN, Role.MEMBER, Role.VIEWER]),
                  solution_id=st.just(s), account_id=st.just(a), status=status)
        for a, s in accounts.items()
    ]
    options += [
        st.builds(Membership, kind=st.just(MembershipKind.GROUP),
                  role=st.sampled_from([Role.GROUP_ADMIN, Role.MEMBER]),
                  solution_id=st.just(accounts[a]), account_id=st.just(a), group_id=st.just(g))
        for g, a in groups.items()
    ]
    principals = []
    for uid in draw(st.lists(st.sampled_from(UIDS), min_size=1, max_size=3, unique=True)):
        by_target: dict[tuple[str, str], Membership] = {}
        for m in draw(st.lists(st.one_of(options), max_size=5)):
            by_target[(m.kind.value, m.target_id)] = m
        principals.append(Principal(
            uid=uid,
            system_role=draw(st.sampled_from([None, None, None, SystemRole.SUPERADMIN])),
            memberships=tuple(by_target.values()),
            read_only=draw(st.sampled_from([False, False, True])),
        ))

    docs = []
    for _ in range(draw(st.integers(1, 14))):
        a = draw(st.sampled_from(sorted(accounts)))
        own_groups = sorted(g for g, ga in groups.items() if ga == a)
        scope = draw(st.sampled_from(
            list(Scope) if own_groups else [x for x in Scope if x is not Scope.GROUP]))
        ids = {"solution_id": accounts[a], "account_id": a,
               "group_id": draw(st.sampled_from(own_groups)) if scope is Scope.GROUP else None,
               "owner_id": draw(st.sampled_from(UIDS))}
        created = BASE_TIME + timedelta(seconds=draw(st.integers(0, 3)))
        docs.append({
            "_id": new_id(), **ids, "scope": scope.value,
            "read_keys": resource_read_keys(scope, **ids),
            "write_keys": resource_write_keys(scope, **ids),
            "title": draw(st.sampled_from(TITLES)), "created_at": created,
            "updated_at": created,
        })
    return {
        "accounts": accounts,
        "principals": principals,
        "docs": docs,
        "sort": draw(st.sampled_from(["-_id", "_id", "title", "-title", "created_at",
                                      "-created_at"])),
        "limit": draw(st.integers(1, 5)),
        "deleter": draw(st.integers(0, 10)),
    }


# -- helpers ---------------------------------------------------------------------


def as_resource(doc: dict[str, Any]) -> ScopedResource:
    data = {k: v for k, v in doc.items() if k != "_id"}
    return ScopedResource(id=doc["_id"], **data)


def visible_in(r: ScopedResource, solution_id: str, account_id: str) -> bool:
    return (r.scope is Scope.GLOBAL
            or (r.scope is Scope.SOLUTION and r.solution_id == solution_id)
            or r.account_id == account_id)


def context(p: Principal, account_id: str, solution_id: str) -> AccountContext:
    return AccountContext(
        principal=p,
        solution=Solution(id=solution_id, slug=solution_id, name=solution_id),
        account=Account(id=account_id, solution_id=solution_id, slug=account_id,
                        name=account_id),
    )


def who(p: Principal) -> str:
    roles = ", ".join(f"{m.role.value}@{m.target_id}({m.status.value})" for m in p.memberships)
    return f"{p.uid} superadmin={p.is_superadmin} read_only={p.read_only} [{roles}]"


def what(r: ScopedResource) -> str:
    return f"{r.scope.value} item in {r.account_id} group={r.group_id} owner={r.owner_id}"


def _doc(scope: Scope, account_id: str, solution_id: str, owner: str,
         group_id: str | None = None) -> dict[str, Any]:
    ids = {"solution_id": solution_id, "account_id": account_id, "group_id": group_id,
           "owner_id": owner}
    return {"_id": new_id(), **ids, "scope": scope.value,
            "read_keys": resource_read_keys(scope, **ids),
            "write_keys": resource_write_keys(scope, **ids),
            "title": "alpha", "created_at": BASE_TIME, "updated_at": BASE_TIME}


# A pinned example: a SOLUTION_ADMIN who also holds VIEWER in one of its accounts, with a
# private item of its own there (random search finds it only now and then).
SOLUTION_ADMIN_AND_VIEWER = {
    "accounts": {"s0a0": "s0"},
    "principals": [Principal(uid="u0", memberships=(
        Membership(kind=MembershipKind.SOLUTION, role=Role.SOLUTION_ADMIN, solution_id="s0"),
        Membership(kind=MembershipKind.ACCOUNT, role=Role.VIEWER, solution_id="s0",
                   account_id="s0a0"),
    ))],
    "docs": [_doc(Scope.PRIVATE, "s0a0", "s0", "u0"), _doc(Scope.ACCOUNT, "s0a0", "s0", "u1")],
    "sort": "-_id",
    "limit": 1,
    "deleter": 0,
}


# -- the property ------------------------------------------------------------------


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(world=worlds())
async def test_repository_matches_rules(synergyhub_services: Any, world: dict[str, Any]) -> None:
    await check_world(synergyhub_services.db, world)


async def test_solution_admin_who_is_viewer_and_own_private_item(synergyhub_services: Any) -> None:
    """The pinned example: can_write allows it (SOLUTION_ADMIN writes), so must the keys."""
    await check_world(synergyhub_services.db, SOLUTION_ADMIN_AND_VIEWER)


async def check_world(db: Any, world: dict[str, Any]) -> None:
    collection = f"prop_{uuid.uuid4().hex[:12]}"
    model = model_for(collection)
    docs = world["docs"]
    resources = {d["_id"]: as_resource(d) for d in docs}
    await db[collection].insert_many([dict(d) for d in docs])
    try:
        contexts = [
            (p, a, s) for p in world["principals"] for a, s in world["accounts"].items()
            if has_context_access(p, solution_id=s, account_id=a)
        ]
        for p, a, s in contexts:
            repo = MongoScopedRepository(model, context(p, a, s), db)
            want = {rid for rid, r in resources.items() if visible_in(r, s, a) and can_read(p, r)}
            got: list[str] = []
            cursor = None
            for _ in range(100):
                page = await repo.list(sort=world["sort"], limit=world["limit"], cursor=cursor)
                got.extend(item.id for item in page.items)
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert len(got) == len(set(got)), f"duplicates across pages for {who(p)} in {a}"
            extra = [what(resources[i]) for i in set(got) - want]
            missing = [what(resources[i]) for i in want - set(got)]
            assert not extra and not missing, (
                f"list as {who(p)} in {a}: extra={extra} missing={missing}")
            assert await repo.count() == len(want)
            for rid, r in resources.items():
                read_ok = rid in want
                try:
                    await repo.get(rid)
                    got_read = True
                except NotFound:
                    got_read = False
                assert got_read == read_ok, f"get as {who(p)} in {a}: {what(r)}"
                write_ok = visible_in(r, s, a) and can_write(p, r)
                try:
                    await repo.update(rid, {"title": "updated"})
                    updated = True
                except NotFound:
                    updated = False
                assert updated == write_ok, (
                    f"update as {who(p)} in {a}: {what(r)}: expected {write_ok}")

        if contexts:
            p, a, s = contexts[world["deleter"] % len(contexts)]
            repo = MongoScopedRepository(model, context(p, a, s), db)
            deleted = set()
            for rid, r in resources.items():
                write_ok = visible_in(r, s, a) and can_write(p, r)
                try:
                    await repo.delete(rid)
                    deleted.add(rid)
                except NotFound:
                    pass
                assert (rid in deleted) == write_ok, (
                    f"delete as {who(p)} in {a}: {what(r)}: expected {write_ok}")
            remaining = {d["_id"] async for d in db[collection].find({}, projection={"_id": 1})}
            assert remaining == set(resources) - deleted
    finally:
        await db.drop_collection(collection)
