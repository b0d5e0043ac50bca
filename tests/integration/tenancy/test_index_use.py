"""The access filter is served by an index for every registered scoped model
(ARCHITECTURE §3: a single indexed predicate; other tenants' data volume never enters
the query plan)."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING

from core.tenancy.models import Scope, new_id, utcnow
from core.tenancy.repository import ACCESS_HINT, ID_HINT
from core.tenancy.rules import resource_read_keys, resource_write_keys

pytestmark = pytest.mark.asyncio(loop_scope="session")

MARKER = "index-use-fixture"


def stages(plan: Any) -> list[str]:
    """Every stage name in a plan tree, however the engine nests it."""
    found: list[str] = []
    if isinstance(plan, dict):
        if isinstance(plan.get("stage"), str):
            found.append(plan["stage"])
        for value in plan.values():
            found.extend(stages(value))
    elif isinstance(plan, list):
        for item in plan:
            found.extend(stages(item))
    return found


def winning_plan(explained: dict[str, Any]) -> Any:
    planner = explained.get("queryPlanner", explained)
    plan = planner.get("winningPlan")
    assert plan is not None, f"explain has no winningPlan: {explained}"
    return plan


def orders(model: Any) -> list[list[tuple[str, int]]]:
    """The sorts the repository issues: its default (-_id) and each sortable field."""
    result = [[("_id", DESCENDING)]]
    for field in sorted(model.sortable):
        if field != "_id":
            result.append([(field, DESCENDING), ("_id", DESCENDING)])
    return result


async def _seed(db: Any, model: Any, personas: Any) -> None:
    """A few records in several tenants so the planner has something to choose from."""
    docs = []
    for tenant in personas.tenants:
        for account in tenant.accounts:
            for scope in (Scope.ACCOUNT, Scope.PRIVATE, Scope.SOLUTION):
                ids = {"solution_id": tenant.solution_id, "account_id": account,
                       "group_id": None, "owner_id": "index-user"}
                docs.append({"_id": new_id(), **ids, "scope": scope.value, "marker": MARKER,
                             "read_keys": resource_read_keys(scope, **ids),
                             "write_keys": resource_write_keys(scope, **ids),
                             "created_at": utcnow(), "updated_at": utcnow()})
    await db[model.collection].insert_many(docs)


def _keys(personas: Any) -> tuple[list[str], list[str]]:
    home, solution = personas.home_account, personas.home_solution
    read_keys = ["global", f"sol:{solution}", f"acc:{home}", f"grpall:{home}",
                 f"grp:{personas.home_group}", f"usr:someone@{home}"]
    write_keys = [f"w:acc:{home}", f"w:grp:{personas.home_group}", f"w:usr:someone@{home}"]
    return read_keys, write_keys


async def _check_plans(synergyhub_services: Any, personas: Any, cases_for: Any) -> list[str]:
    db = synergyhub_services.db
    models = synergyhub_services.tenancy.repositories.models
    assert models, "no scoped models are registered"
    failures: list[str] = []
    for name, model in sorted(models.items()):
        await _seed(db, model, personas)
        try:
            collection = db[model.collection]
            some_id = (await collection.find_one({"marker": MARKER}))["_id"]
            for case in cases_for(model, some_id):
                label, query, order = case[:3]
                hint = case[3] if len(case) > 3 else None
                cursor = collection.find(query, hint=hint)
                if order:
                    cursor = cursor.sort(order).limit(51)
                explained = await cursor.explain()
                names = stages(winning_plan(explained))
                if "COLLSCAN" in names or "IXSCAN" not in names:
                    failures.append(f"{name} {label}: plan stages {names}")
        finally:
            await db[model.collection].delete_many({"marker": MARKER})
    return failures


async def test_access_filter_uses_an_index(synergyhub_services: Any, personas: Any) -> None:
    """{"read_keys": {"$in": keys}} with each sort the repository issues; the write filter."""
    read_keys, write_keys = _keys(personas)

    def cases(model: Any, _: str) -> list[tuple[str, dict[str, Any], Any]]:
        found: list[tuple[str, dict[str, Any], Any]] = [
            (f"read filter sort={order}", {"read_keys": {"$in": read_keys}}, order)
            for order in orders(model)
        ]
        found.append(("write filter", {"write_keys": {"$in": write_keys}}, None))
        return found

    failures = await _check_plans(synergyhub_services, personas, cases)
    assert not failures, "\n".join(failures)


async def test_repository_query_shapes_use_an_index(
    synergyhub_services: Any, personas: Any
) -> None:
    """The shapes (and index hints) the repository actually sends: the access filter
    combined with an id (get), the write filter with an id (update/delete), a cursor
    (next page) and a client filter. Each must stay on an index, so other tenants'
    volume never counts."""
    read_keys, write_keys = _keys(personas)
    access = {"read_keys": {"$in": read_keys}}
    write = {"write_keys": {"$in": write_keys}}

    def cases(model: Any, some_id: str) -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = [
            ("get: access ∧ _id", {"$and": [access, {"_id": some_id}]}, None, ID_HINT),
            ("update/delete: write ∧ _id", {"$and": [write, {"_id": some_id}]}, None, ID_HINT),
            ("next page: access ∧ _id<cursor", {"$and": [access, {"_id": {"$lt": some_id}}]},
             [("_id", DESCENDING)], ACCESS_HINT),
        ]
        if model.filterable:
            field = sorted(model.filterable)[0]
            found.append((f"filtered list: access ∧ {field}",
                          {"$and": [access, {field: "x"}]}, [("_id", DESCENDING)], ACCESS_HINT))
        return found

    failures = await _check_plans(synergyhub_services, personas, cases)
    assert not failures, "\n".join(failures)


async def test_access_indexes_exist(synergyhub_services: Any) -> None:
    db = synergyhub_services.db
    failures = []
    for name, model in sorted(synergyhub_services.tenancy.repositories.models.items()):
        info = await db[model.collection].index_information()
        keys = [tuple((k, int(d)) for k, d in spec["key"]) for spec in info.values()]
        if (("read_keys", ASCENDING), ("_id", DESCENDING)) not in keys:
            failures.append(f"{name}: no (read_keys, -_id) index: {keys}")
        if not any(k and k[0][0] == "write_keys" for k in keys):
            failures.append(f"{name}: no write_keys index: {keys}")
    assert not failures, failures
