"""Kernel settings a Solution sets for itself (``broker``, ``ai``), stored in the cascade store.

Plugin namespaces cascade down to Accounts and Groups; these do not: they
govern what the platform spends on a Solution's behalf (token lifetimes,
quotas, which AI endpoint receives the platform key), so only the Solution
layer over the platform defaults counts, and an Account admin cannot lift
them. The layer comes from the app's cached cascade store, so a change reaches
every instance within its TTL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from core.tenancy.cascade import CascadeStore, Layer, platform_defaults, resolve, validate_values
from core.tenancy.models import Principal

__all__ = ["SolutionNamespace"]

S = TypeVar("S", bound=BaseModel)
#: Raises a Problem when ``principal`` may not write these values (after schema checks).
WriteCheck = Callable[[Principal, Mapping[str, Any], BaseModel], None]


class SolutionNamespace(Generic[S]):
    """One kernel namespace: platform defaults (the schema's) under a Solution layer."""

    def __init__(self, store: CascadeStore, namespace: str, schema: type[S]) -> None:
        self.namespace = namespace
        self.schema = schema
        self.store = store

    def defaults(self) -> S:
        return self.schema()

    async def _load(self, solution_id: str) -> tuple[S, dict[str, Any]]:
        layers = await self.store.layers(self.namespace, {"solution": solution_id})
        stored = dict(layers[0].values) if layers else {}
        known = {k: v for k, v in stored.items() if k in self.schema.model_fields}
        try:
            values = self.schema.model_validate({**platform_defaults(self.schema), **known})
        except ValueError:
            # A stored value the schema no longer accepts: fall back to the
            # platform defaults rather than failing every request.
            values, known = self.defaults(), {}
        return values, known

    async def values(self, solution_id: str) -> S:
        """The effective settings of a Solution."""
        return (await self._load(solution_id))[0]

    async def resolved(self, solution_id: str) -> dict[str, Any]:
        """Each key with its value and where it came from (the cascade API's shape)."""
        _, stored = await self._load(solution_id)
        layers = [Layer("platform", "platform", platform_defaults(self.schema)),
                  Layer("solution", solution_id, stored)]
        return {key: item.as_dict() for key, item in resolve(layers).items()}

    async def write(self, principal: Principal, solution_id: str, values: Mapping[str, Any],
                    check: WriteCheck | None = None) -> dict[str, Any]:
        """Validate a partial update, apply ``check``, store it; returns the clean values."""
        clean = validate_values(self.schema, values)
        if check is not None:
            check(principal, clean, self.defaults())
        await self.store.write("solution", solution_id, self.namespace, clean)
        return clean
