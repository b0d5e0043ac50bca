"""Settings cascade Platform → Solution → Account → Group, with locks and provenance.

A namespace is a plugin name (its manifest's settings schema gives the platform
defaults) or ``branding``. Each lower level may override a key unless a
SOLUTION_ADMIN locked it at the Solution level; the resolved value of every
key says where it came from.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from core.kernel.cache import MISSING, TTLCache
from core.kernel.errors import Forbidden, Unprocessable, validation_error_list
from core.tenancy.models import AccountContext

Level = Literal["platform", "solution", "account", "group"]
LEVELS: tuple[Level, ...] = ("platform", "solution", "account", "group")


@dataclass(frozen=True)
class Layer:
    level: Level
    target_id: str
    values: Mapping[str, Any]
    locks: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Resolved:
    value: Any
    source: Level
    source_id: str
    locked: bool

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source, "source_id": self.source_id,
                "locked": self.locked}


def resolve(layers: list[Layer]) -> dict[str, Resolved]:
    """Apply layers in cascade order; a key locked at the Solution stops there."""
    ordered = sorted(layers, key=lambda layer: LEVELS.index(layer.level))
    resolved: dict[str, Resolved] = {}
    locked: set[str] = set()
    for layer in ordered:
        for key, value in layer.values.items():
            if key in locked:
                continue
            resolved[key] = Resolved(value, layer.level, layer.target_id, key in layer.locks)
        if layer.level == "solution":
            locked |= set(layer.locks)
            for key in layer.locks:
                if key in resolved:
                    current = resolved[key]
                    resolved[key] = Resolved(current.value, current.source, current.source_id,
                                             True)
    return resolved


def check_write(level: Level, values: Mapping[str, Any], solution_locks: frozenset[str]) -> None:
    """Writing a locked key below the Solution is refused (403)."""
    if level in ("account", "group"):
        blocked = sorted(set(values) & solution_locks)
        if blocked:
            raise Forbidden(
                f"These settings are locked by the Solution: {', '.join(blocked)}.",
                type_slug="setting-locked", locked=blocked,
            )


def validate_values(schema: type[BaseModel] | None, values: Mapping[str, Any]) -> dict[str, Any]:
    """Only the schema's keys, each valid on its own (a partial update)."""
    if schema is None:
        raise Unprocessable("This namespace has no settings.")
    unknown = sorted(set(values) - set(schema.model_fields))
    if unknown:
        raise Unprocessable(f"Unknown settings: {', '.join(unknown)}.")
    try:
        checked = schema.model_validate({**platform_defaults(schema), **values})
    except ValidationError as exc:
        raise Unprocessable("Invalid settings.", errors=validation_error_list(exc)) from None
    dumped = checked.model_dump(mode="json")
    return {key: dumped[key] for key in values}


def platform_defaults(schema: type[BaseModel] | None) -> dict[str, Any]:
    if schema is None:
        return {}
    return {
        name: info.get_default(call_default_factory=True)
        for name, info in schema.model_fields.items()
        if not info.is_required()
    }


# The "branding" namespace's schema lives with the white-label feature.
from core.whitelabel.branding import BrandingSettings as BrandingSettings  # noqa: E402


def _layer_id(level: Level, target_id: str, namespace: str) -> str:
    return f"{level}:{target_id}:{namespace}"


class CascadeStore:
    """Settings layers in MongoDB (one document per level, target and namespace).

    With ``cache_seconds`` the layers are cached per process: plugins resolve
    their settings on most requests, and they change rarely. A write through
    this store evicts what it changed, so this instance sees it at once and
    other instances within the TTL (the same bound as the tenancy directory).
    The app holds one cached store (``services.tenancy.cascade``). Checks that
    guard a write (locks) read with ``fresh=True``.
    """

    def __init__(self, database: Any, *, cache_seconds: float = 0.0) -> None:
        self.collection = database["settings_layers"]
        self._cache: TTLCache[str, Layer | None] | None = (
            TTLCache(cache_seconds) if cache_seconds > 0 else None)
        self._writes = 0  # a read that overlapped a write must not cache what it read

    async def layers(self, namespace: str, targets: Mapping[Level, str], *,
                     fresh: bool = False) -> list[Layer]:
        """The stored layers for these targets (cached unless ``fresh``).

        Layers are shared with the cache: treat their ``values`` as read-only.
        """
        ids = [_layer_id(level, target, namespace) for level, target in targets.items()]
        cached = [self._cache.get(layer_id) for layer_id in ids] \
            if self._cache and not fresh else []
        if cached and MISSING not in cached:
            return [layer for layer in cached if layer is not None]
        writes_before = self._writes
        docs = await self.collection.find({"_id": {"$in": ids}}).to_list()
        found = {
            doc["_id"]: Layer(doc["level"], doc["target_id"], doc.get("values", {}),
                              frozenset(doc.get("locks", [])))
            for doc in docs
        }
        if self._cache is not None and self._writes == writes_before:
            for layer_id in ids:
                self._cache.put(layer_id, found.get(layer_id))  # None: no layer here
        return [found[layer_id] for layer_id in ids if layer_id in found]

    async def resolve_for(
        self,
        namespace: str,
        schema: type[BaseModel] | None,
        *,
        solution_id: str,
        enabled_with: Mapping[str, Any] | None = None,
        account_id: str | None = None,
        group_id: str | None = None,
    ) -> dict[str, Resolved]:
        """Platform defaults → Solution (settings given when the plugin was enabled,
        then the stored Solution layer with its locks) → Account → Group."""
        targets: dict[Level, str] = {"solution": solution_id}
        if account_id:
            targets["account"] = account_id
        if account_id and group_id:
            targets["group"] = group_id
        layers = [Layer("platform", "platform", platform_defaults(schema))]
        if enabled_with:
            layers.append(Layer("solution", solution_id, dict(enabled_with)))
        layers.extend(await self.layers(namespace, targets))
        return resolve(layers)  # stable sort: the stored Solution layer wins

    async def plugin_values(self, plugin: str, schema: type[BaseModel] | None,
                            ctx: AccountContext, *, group_id: str | None = None
                            ) -> dict[str, Any]:
        """A plugin's settings where ``ctx`` acts: the cascade's values, no provenance.

        A copy: a plugin may change what it gets without touching the cache.
        """
        resolved = await self.resolve_for(
            plugin, schema, solution_id=ctx.solution.id,
            enabled_with=ctx.solution.plugin_settings.get(plugin),
            account_id=ctx.account.id, group_id=group_id)
        return copy.deepcopy({key: item.value for key, item in resolved.items()})

    async def write(self, level: Level, target_id: str, namespace: str,
                    values: Mapping[str, Any], locks: list[str] | None = None, *,
                    replace: bool = False) -> None:
        """Merge ``values`` into the layer (or, with ``replace``, make them the whole layer)."""
        update: dict[str, Any] = {
            "level": level, "target_id": target_id, "namespace": namespace,
        }
        if replace:
            update["values"] = dict(values)
        else:
            update.update({f"values.{key}": value for key, value in values.items()})
        if locks is not None:
            update["locks"] = sorted(set(locks))
        layer_id = _layer_id(level, target_id, namespace)
        self._writes += 1  # counted before and after: no overlapping read caches old values
        try:
            await self.collection.update_one({"_id": layer_id}, {"$set": update}, upsert=True)
        finally:
            self._writes += 1
            if self._cache is not None:
                self._cache.pop(layer_id)
