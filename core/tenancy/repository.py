"""The access-controlled repository: the one enforcement point for tenant data.

``ScopedRepository`` is the port. Its public methods do the bookkeeping that
must never be forgotten — combine every query with the principal's access or
write filter as ``{"$and": [access, query]}``, refuse operator and dotted keys,
stamp tenant fields from the context — and then call the adapter's ``_``
methods. ``MongoScopedRepository`` is the adapter over pymongo's async API.
Plugins receive bound repositories, never collections.
"""

from __future__ import annotations

import base64
import builtins
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from core.kernel.errors import Forbidden, NotFound, Unprocessable
from core.tenancy.models import AccountContext, Scope, ScopedResource, Status, new_id, utcnow
from core.tenancy.rules import (
    access_filter,
    principal_write_keys,
    resource_read_keys,
    resource_write_keys,
    write_filter,
)

T = TypeVar("T", bound=ScopedResource)
Filter = dict[str, Any]
Scalar = str | int | float | bool | None
Docs = list[dict[str, Any]]
Hint = list[tuple[str, int]] | None

# Index hints keep combined predicates index-backed on every engine (SecantusDB only
# plans single-predicate filters by itself; mongod would choose these plans anyway).
ID_HINT = [("_id", 1)]
ACCESS_HINT = [("read_keys", 1), ("_id", -1)]
WRITE_HINT = [("write_keys", 1)]

MAX_LIMIT = 100
DEFAULT_LIMIT = 50
# Fields that only the kernel writes; bodies that carry them are refused.
PROTECTED_FIELDS = frozenset(
    {"_id", "id", "solution_id", "account_id", "owner_id", "read_keys", "write_keys",
     "created_at", "updated_at", "scope", "group_id"}
)


class InvalidQuery(Unprocessable):
    """A client-supplied filter, sort or field that is not allowed."""

    type_slug = "invalid-query"


def reject_operator_keys(value: Any, *, where: str = "body") -> None:
    """Refuse ``$``-prefixed and dotted keys anywhere in client input."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or key.startswith("$") or "." in key or "\x00" in key:
                raise InvalidQuery(f"Field name {str(key)[:40]!r} in the {where} is not allowed.")
            reject_operator_keys(item, where=where)
    elif isinstance(value, list):
        for item in value:
            reject_operator_keys(item, where=where)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def _encode_cursor(sort_value: Any, last_id: str) -> str:
    if isinstance(sort_value, datetime):
        sort_value = {"$dt": sort_value.isoformat()}
    raw = json.dumps([sort_value, last_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sort_value, last_id = json.loads(raw)
        if isinstance(sort_value, dict) and set(sort_value) == {"$dt"}:
            sort_value = datetime.fromisoformat(sort_value["$dt"])
        elif isinstance(sort_value, dict | list):
            raise ValueError
        elif isinstance(sort_value, int) and not -(2**63) <= sort_value < 2**63:
            raise ValueError  # BSON cannot hold it
        elif isinstance(sort_value, float) and not math.isfinite(sort_value):
            raise ValueError
        if not isinstance(last_id, str):
            raise ValueError
        return sort_value, last_id
    except (ValueError, TypeError):
        raise InvalidQuery("The cursor is not valid; start again without one.") from None


class ScopedRepository(ABC, Generic[T]):
    """Port: tenant data as seen by one principal in one account context."""

    def __init__(self, model: type[T], ctx: AccountContext) -> None:
        self.model = model
        self.ctx = ctx
        ids = {"solution_id": ctx.solution.id, "account_id": ctx.account.id}
        self._access = access_filter(ctx.principal, **ids)
        self._write = write_filter(ctx.principal, **ids)
        self._write_keys = set(principal_write_keys(ctx.principal, **ids))

    # -- filters -----------------------------------------------------------

    def _with_access(self, query: Filter | None, *, write: bool = False) -> Filter:
        base = self._write if write else self._access
        return {"$and": [base, query]} if query else base

    def _user_filter(self, filters: Mapping[str, Any] | None) -> Filter:
        """Equality (or list → ``$in``) on allow-listed fields only."""
        if not filters:
            return {}
        reject_operator_keys(dict(filters), where="filter")
        query: Filter = {}
        for field, value in filters.items():
            if field not in self.model.filterable:
                raise InvalidQuery(f"Filtering on {field!r} is not supported.")
            if isinstance(value, list):
                if not all(isinstance(v, Scalar) for v in value):  # type: ignore[arg-type,misc]
                    raise InvalidQuery(f"Filter {field!r} takes plain values.")
                query[field] = {"$in": value}
            elif isinstance(value, Mapping):
                raise InvalidQuery(f"Filter {field!r} takes a plain value, not an object.")
            else:
                query[field] = value
        return query

    # -- reads -------------------------------------------------------------

    async def get(self, resource_id: str) -> T:
        doc = await self._find_one(self._with_access({"_id": resource_id}), ID_HINT)
        if doc is None:
            raise NotFound("No such resource.")
        return self._load(doc)

    async def list(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort: str = "-_id",
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[T]:
        limit = max(1, min(int(limit), MAX_LIMIT))
        field, direction = sort.lstrip("-"), DESCENDING if sort.startswith("-") else ASCENDING
        if field not in self.model.sortable | {"_id"}:
            raise InvalidQuery(f"Sorting by {field!r} is not supported.")
        query = self._user_filter(filters)
        if cursor:
            value, last_id = _decode_cursor(cursor)
            op = "$lt" if direction == DESCENDING else "$gt"
            after = (
                {"_id": {op: last_id}}
                if field == "_id"
                else {"$or": [{field: {op: value}}, {field: value, "_id": {op: last_id}}]}
            )
            query = {"$and": [query, after]} if query else after
        order = [(field, direction)] if field == "_id" else [(field, direction), ("_id", direction)]
        docs = await self._find(self._with_access(query), order, limit + 1,
                                ACCESS_HINT if query else None)
        items = [self._load(doc) for doc in docs[:limit]]
        next_cursor = None
        if len(docs) > limit:
            last: dict[str, Any] = docs[limit - 1]
            next_cursor = _encode_cursor(last.get(field) if field != "_id" else None, last["_id"])
        return Page(items, next_cursor)

    async def count(self, filters: Mapping[str, Any] | None = None) -> int:
        query = self._user_filter(filters)
        return await self._count(self._with_access(query), ACCESS_HINT if query else None)

    async def distinct(
        self, field: str, filters: Mapping[str, Any] | None = None
    ) -> builtins.list[Any]:
        if field not in self.model.filterable:
            raise InvalidQuery(f"Listing values of {field!r} is not supported.")
        return await self._distinct(field, self._with_access(self._user_filter(filters)))

    async def aggregate(self, pipeline: Sequence[Mapping[str, Any]]) -> Docs:
        """Kernel-built pipelines: starts with the access ``$match``; each ``$lookup``
        into a scoped collection repeats it."""
        stages: Docs = [{"$match": self._access}]
        for stage in pipeline:
            if "$lookup" in stage:
                lookup = dict(stage["$lookup"])
                inner = list(lookup.get("pipeline", []))
                lookup["pipeline"] = [{"$match": self._access}, *inner]
                stages.append({"$lookup": lookup})
            elif set(stage) & {"$out", "$merge", "$unionWith", "$graphLookup"}:
                raise InvalidQuery("This pipeline stage is not allowed.")
            else:
                stages.append(dict(stage))
        return await self._aggregate(stages)

    # -- writes ------------------------------------------------------------

    async def insert(
        self, data: Mapping[str, Any], *, scope: Scope, group_id: str | None = None
    ) -> T:
        """Create a record; tenant fields come from the context, never from ``data``."""
        reject_operator_keys(dict(data))
        smuggled = PROTECTED_FIELDS & set(data)
        if smuggled:
            raise InvalidQuery(f"Fields set by the platform cannot be sent: {sorted(smuggled)}.")
        ctx = self.ctx
        if scope is Scope.GROUP:
            if not group_id or not await self._group_is_active(group_id):
                raise Unprocessable("group_id must name an active group of this account.")
        else:
            group_id = None
        ids: dict[str, Any] = {
            "solution_id": ctx.solution.id,
            "account_id": ctx.account.id,
            "group_id": group_id,
            "owner_id": ctx.principal.uid,
        }
        write_keys = resource_write_keys(scope, **ids)
        if not self._write_keys.intersection(write_keys):
            raise Forbidden(f"You may not create items in {scope.value} scope here.")
        now = utcnow()
        resource = self.model.model_validate(
            {
                **data,
                **ids,
                "id": new_id(),
                "scope": scope,
                "read_keys": resource_read_keys(scope, **ids),
                "write_keys": write_keys,
                "created_at": now,
                "updated_at": now,
            }
        )
        await self._insert(self._dump(resource))
        return resource

    async def update(self, resource_id: str, changes: Mapping[str, Any]) -> T:
        """Change plain fields of a record the caller may write.

        Outside the write filter answers 404 like a missing id, so ids cannot
        be probed (ARCHITECTURE §3)."""
        reject_operator_keys(dict(changes))
        smuggled = PROTECTED_FIELDS & set(changes)
        if smuggled:
            raise InvalidQuery(f"Fields set by the platform cannot be changed: {sorted(smuggled)}.")
        changes = self._validated_changes(changes)
        doc = await self._update_one(
            self._with_access({"_id": resource_id}, write=True),
            ID_HINT,
            {"$set": {**changes, "updated_at": utcnow()}},
        )
        if doc is None:
            raise NotFound("No such resource.")
        return self._load(doc)

    async def delete(self, resource_id: str) -> None:
        deleted = await self._delete_one(
            self._with_access({"_id": resource_id}, write=True), ID_HINT
        )
        if not deleted:
            raise NotFound("No such resource.")

    def _validated_changes(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Validate each changed field against the model, so a write never stores
        a value the model cannot load again (a poisoned record would 500 on read)."""
        checked: dict[str, Any] = {}
        for key, value in changes.items():
            field = self.model.model_fields.get(key)
            if field is None:
                raise InvalidQuery(f"Field {key!r} does not exist.")
            annotated: Any = (
                Annotated[field.annotation, *field.metadata] if field.metadata
                else field.annotation
            )
            adapter: TypeAdapter[Any] = TypeAdapter(annotated)
            try:
                # Stored as plain data: nested models become dicts (BSON cannot encode them).
                checked[key] = adapter.dump_python(adapter.validate_python(value))
            except ValidationError as exc:
                message = exc.errors(include_url=False, include_input=False)[0]["msg"]
                raise Unprocessable(f"{key}: {message}.") from None
        return checked

    # -- (de)serialisation -------------------------------------------------

    def _load(self, doc: Mapping[str, Any]) -> T:
        data = dict(doc)
        data["id"] = data.pop("_id")
        return self.model.model_validate(data)

    def _dump(self, resource: T) -> dict[str, Any]:
        data = resource.model_dump(mode="python")
        data["_id"] = data.pop("id")
        return data

    # -- adapter -----------------------------------------------------------

    @abstractmethod
    async def _find_one(self, query: Filter, hint: Hint = None) -> dict[str, Any] | None: ...

    @abstractmethod
    async def _find(
        self, query: Filter, order: builtins.list[tuple[str, int]], limit: int, hint: Hint = None
    ) -> Docs: ...

    @abstractmethod
    async def _count(self, query: Filter, hint: Hint = None) -> int: ...

    @abstractmethod
    async def _distinct(self, field: str, query: Filter) -> builtins.list[Any]: ...

    @abstractmethod
    async def _aggregate(self, pipeline: Docs) -> Docs: ...

    @abstractmethod
    async def _insert(self, doc: dict[str, Any]) -> None: ...

    @abstractmethod
    async def _update_one(
        self, query: Filter, hint: Hint, update: Filter
    ) -> dict[str, Any] | None: ...

    @abstractmethod
    async def _delete_one(self, query: Filter, hint: Hint = None) -> bool: ...

    @abstractmethod
    async def _group_is_active(self, group_id: str) -> bool: ...


class MongoScopedRepository(ScopedRepository[T]):
    """Adapter: the port's operations on one MongoDB collection."""

    def __init__(
        self,
        model: type[T],
        ctx: AccountContext,
        database: AsyncDatabase[dict[str, Any]],
    ) -> None:
        super().__init__(model, ctx)
        self._db = database
        self._collection = database[model.collection]

    async def _ready(self) -> None:
        """Models bound after start-up get their indexes before the first query."""
        await ensure_indexes(self._db, self.model)

    async def _find_one(self, query: Filter, hint: Hint = None) -> dict[str, Any] | None:
        await self._ready()
        found = await self._collection.find(query, hint=hint).limit(1).to_list()
        return found[0] if found else None

    async def _find(
        self, query: Filter, order: builtins.list[tuple[str, int]], limit: int, hint: Hint = None
    ) -> Docs:
        await self._ready()
        cursor = self._collection.find(query, hint=hint).sort(order).limit(limit)
        return await cursor.to_list()

    async def _count(self, query: Filter, hint: Hint = None) -> int:
        await self._ready()
        if hint is None:
            return await self._collection.count_documents(query)
        return await self._collection.count_documents(query, hint=hint)

    async def _distinct(self, field: str, query: Filter) -> builtins.list[Any]:
        await self._ready()
        return list(await self._collection.distinct(field, query))

    async def _aggregate(self, pipeline: Docs) -> Docs:
        await self._ready()
        cursor = await self._collection.aggregate(pipeline)
        return await cursor.to_list()

    async def _insert(self, doc: dict[str, Any]) -> None:
        await self._ready()
        await self._collection.insert_one(doc)

    async def _update_one(
        self, query: Filter, hint: Hint, update: Filter
    ) -> dict[str, Any] | None:
        await self._ready()
        return await self._collection.find_one_and_update(
            query, update, return_document=ReturnDocument.AFTER, hint=hint
        )

    async def _delete_one(self, query: Filter, hint: Hint = None) -> bool:
        await self._ready()
        result = await self._collection.delete_one(query, hint=hint)
        return result.deleted_count == 1

    async def _group_is_active(self, group_id: str) -> bool:
        found = await self._db["groups"].find_one(
            {"_id": group_id, "account_id": self.ctx.account.id, "status": Status.ACTIVE.value},
            projection={"_id": 1},
        )
        return found is not None


ACCESS_INDEXES: tuple[tuple[tuple[str, int], ...], ...] = (
    (("read_keys", ASCENDING), ("_id", DESCENDING)),
    (("write_keys", ASCENDING),),
)


_INDEXED: set[tuple[str, str]] = set()


async def ensure_indexes(
    database: AsyncDatabase[dict[str, Any]], model: type[ScopedResource]
) -> None:
    """Create the access-filter and model indexes once per process and collection."""
    key = (database.name, model.collection)
    if key in _INDEXED:
        return
    collection = database[model.collection]
    for keys in (*ACCESS_INDEXES, *model.indexes):
        await collection.create_index(list(keys))
    _INDEXED.add(key)


class RepositoryFactory:
    """Creates indexes for registered models and binds repositories to contexts."""

    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = database
        self.models: dict[str, type[ScopedResource]] = {}

    def register(self, model: type[ScopedResource]) -> None:
        if not (isinstance(model, type) and issubclass(model, ScopedResource)):
            raise TypeError(f"{model!r} is not a ScopedResource subclass")
        if not model.collection:
            raise ValueError(f"{model.__name__} must name its collection")
        self.models[model.collection] = model

    async def create_indexes(self) -> None:
        for model in list(self.models.values()):
            await ensure_indexes(self._db, model)

    def bind(self, model: type[T], ctx: AccountContext) -> ScopedRepository[T]:
        if model.collection not in self.models:
            self.register(model)
        return MongoScopedRepository(model, ctx, self._db)
